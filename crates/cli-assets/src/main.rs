//! `cli-assets manifest|completions DIR|man DIR`: derived files for the plugin and for
//! `scripts/install`.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["manifest"] => print!("{}", cli_assets::manifest_text()),
        ["completions", dir] => cli_assets::completions(std::path::Path::new(dir))?,
        ["man", dir] => cli_assets::man_pages(std::path::Path::new(dir))?,
        _ => anyhow::bail!("usage: cli-assets manifest | completions DIR | man DIR"),
    }
    Ok(())
}
