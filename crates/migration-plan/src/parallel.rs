//! How many parallel workers production's server gives an index build: the sample builds
//! alone, production may share the rows among workers, so the estimate divides the rows'
//! part by the participants (its best case; the worst is no worker free).

/// The server settings that decide how many parallel workers an index build gets.
#[derive(Debug, Clone, Copy)]
pub struct ParallelSettings {
    /// `max_parallel_maintenance_workers`.
    pub max_workers: u32,
    /// `min_parallel_table_scan_size`, in blocks.
    pub min_table_blocks: u64,
    /// `maintenance_work_mem`, in kB.
    pub maintenance_work_mem_kb: u64,
}

/// How many parallel workers PostgreSQL plans for a (non-concurrent or concurrent) index build
/// on a table of `heap_blocks` blocks, as `plan_create_index_workers` does: the table's
/// `parallel_workers` option or one more worker each time the table is three times the
/// threshold again, at most `max_parallel_maintenance_workers`, then fewer until each
/// participant has 32 MB of `maintenance_work_mem`.
pub fn index_build_workers(heap_blocks: u64, reloption: Option<u32>, settings: ParallelSettings) -> u32 {
    if settings.max_workers == 0 {
        return 0;
    }
    let mut workers = match reloption {
        Some(n) => n,
        None => {
            if heap_blocks < settings.min_table_blocks {
                return 0;
            }
            let mut threshold = settings.min_table_blocks.max(1);
            let mut n = 1;
            while heap_blocks >= threshold * 3 && threshold <= i32::MAX as u64 / 3 {
                n += 1;
                threshold *= 3;
            }
            n
        }
    }
    .min(settings.max_workers);
    while workers > 0 && settings.maintenance_work_mem_kb / (u64::from(workers) + 1) < 32_768 {
        workers -= 1;
    }
    workers
}

impl ParallelSettings {
    /// Production's, read from its settings.
    pub fn read(prod: &mut pg_locks::Client) -> anyhow::Result<ParallelSettings> {
        let row = prod.query_one(
            "SELECT current_setting('max_parallel_maintenance_workers')::int8, \
               (SELECT setting::int8 FROM pg_settings WHERE name = 'min_parallel_table_scan_size'), \
               (SELECT setting::int8 FROM pg_settings WHERE name = 'maintenance_work_mem')",
            &[],
        )?;
        Ok(ParallelSettings {
            max_workers: row.get::<_, i64>(0).max(0) as u32,
            min_table_blocks: row.get::<_, i64>(1).max(0) as u64,
            maintenance_work_mem_kb: row.get::<_, i64>(2).max(0) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_build_gets_the_workers_postgresql_would_plan() {
        let defaults = ParallelSettings { max_workers: 2, min_table_blocks: 1024, maintenance_work_mem_kb: 65_536 };
        assert_eq!(index_build_workers(900, None, defaults), 0, "under the threshold");
        assert_eq!(index_build_workers(9_400, None, defaults), 1, "memory allows one");
        let roomy = ParallelSettings { maintenance_work_mem_kb: 1 << 20, ..defaults };
        assert_eq!(index_build_workers(3_100, None, roomy), 2);
        assert_eq!(index_build_workers(1_100, None, roomy), 1);
        assert_eq!(index_build_workers(10, Some(4), roomy), 2, "the table's option, capped");
        assert_eq!(index_build_workers(1 << 20, None, ParallelSettings { max_workers: 0, ..roomy }), 0);
    }
}
