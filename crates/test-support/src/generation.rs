//! The same test body against a Cedar app and a Fir app: [`crate::on_both_generations!`]
//! writes one `#[test]` per generation from one body that takes a [`Generation`].
//!
//! The Fir copies are named `…::fir`; the PostgreSQL version matrix in scripts/test skips
//! them (what differs between generations is the platform, not the database).

use std::path::{Path, PathBuf};

use heroku_sim::World;

/// Which platform generation a test's app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// Cedar on `heroku-24`: `web.1` names, rendezvous attach, slugs.
    Cedar,
    /// Fir on `cnb` (Fir builds only with Cloud Native Buildpacks): pod names, SSH attach,
    /// OCI images, log sessions without history, `launcher` for one-off commands.
    Fir,
}

impl Generation {
    /// Makes `app` of `world` this generation (a no-op for Cedar). Any time after `add_app`.
    pub fn apply(self, world: &mut World, app: &str) {
        if self == Generation::Fir {
            world.make_fir(app, true);
        }
    }

    /// `cedar` or `fir`, as reports say it.
    pub fn name(self) -> &'static str {
        match self {
            Generation::Cedar => "cedar",
            Generation::Fir => "fir",
        }
    }

    /// The stack a report names for this generation's app.
    pub fn stack(self) -> &'static str {
        match self {
            Generation::Cedar => "heroku-24",
            Generation::Fir => "cnb",
        }
    }
}

/// Writes the app's language runtime into `dir/runtime` (a `bundle` that runs `bundle exec
/// CMD` as CMD), sets it as the world's runtime and returns it: on Cedar it is on every dyno's
/// PATH, on `cnb` a one-off command reaches it only through `launcher`.
pub fn install_runtime(world: &mut World, dir: &Path) -> std::io::Result<PathBuf> {
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime)?;
    let bundle = runtime.join("bundle");
    std::fs::write(
        &bundle,
        "#!/bin/sh\n# The app's bundler, as a buildpack installs it.\n[ \"$1\" = exec ] && shift\nexec \"$@\"\n",
    )?;
    std::fs::set_permissions(&bundle, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    world.slug.runtime_dir = Some(runtime.clone());
    Ok(runtime)
}

/// One test per generation from one body: `on_both_generations! { fn name(g) { … } }` makes
/// `name::cedar` and `name::fir`, each calling the body with its [`Generation`].
#[macro_export]
macro_rules! on_both_generations {
    ($(#[doc = $doc:expr])* fn $name:ident($g:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($g: $crate::generation::Generation) $body

            #[test]
            fn cedar() {
                body($crate::generation::Generation::Cedar)
            }

            #[test]
            fn fir() {
                body($crate::generation::Generation::Fir)
            }
        }
    };
}
