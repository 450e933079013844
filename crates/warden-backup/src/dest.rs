//! The destinations the plugin writes to: a backup directory ([`BackupDir`]), a PostgreSQL
//! database ([`PgBackup`]), or both. Each record and snapshot is sealed once and the same
//! blob is written to every destination; the hook answers `continue` only when every one of
//! them holds it durably.
//!
//! The destinations are written at the same time (one thread each beyond the first), so a
//! write to a directory and a database costs the slower of the two, not their sum.
//!
//! Each destination keeps its own position (its last `data_version`), so one added later,
//! or one a failed write left behind, is brought in step by a snapshot while the others go
//! on; one *ahead* of the database refuses the whole plugin, naming itself.

use std::fmt;

use crate::dir::BackupDir;
use crate::postgres::PgBackup;

/// One place the backup is written to.
pub trait Destination: fmt::Debug + Send {
    /// What and where it is, for messages (a path, or a database without its password).
    fn describe(&self) -> String;
    /// The last `data_version` it holds, `None` when empty.
    fn last(&self) -> Option<u64>;
    /// Stores the sealed record of `data_version` durably; it must follow [`Self::last`].
    fn append_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), String>;
    /// Stores the sealed snapshot of `data_version` durably; what follows goes after it.
    fn snapshot_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), String>;
    /// Drops (or supersedes) the last record, of `data_version`, which the database never
    /// committed. A snapshot must follow before the next record.
    fn rewind_last(&mut self, data_version: u64) -> Result<(), String>;
}

impl Destination for BackupDir {
    fn describe(&self) -> String {
        format!("the backup in {}", self.path().display())
    }
    fn last(&self) -> Option<u64> {
        self.position().last
    }
    fn append_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), String> {
        BackupDir::append_sealed(self, data_version, blob).map_err(|e| e.to_string())
    }
    fn snapshot_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), String> {
        BackupDir::snapshot_sealed(self, data_version, blob).map_err(|e| e.to_string())
    }
    fn rewind_last(&mut self, data_version: u64) -> Result<(), String> {
        BackupDir::rewind_last(self, data_version).map_err(|e| e.to_string())
    }
}

impl Destination for PgBackup {
    fn describe(&self) -> String {
        format!("the backup in {}", self.target())
    }
    fn last(&self) -> Option<u64> {
        PgBackup::last(self)
    }
    fn append_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), String> {
        PgBackup::append_sealed(self, data_version, blob).map_err(|e| e.to_string())
    }
    fn snapshot_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), String> {
        PgBackup::snapshot_sealed(self, data_version, blob).map_err(|e| e.to_string())
    }
    fn rewind_last(&mut self, data_version: u64) -> Result<(), String> {
        PgBackup::rewind_last(self, data_version).map_err(|e| e.to_string())
    }
}

/// Runs `write` on every destination at the same time (a scoped thread for each beyond the
/// first) and waits for all of them: `Ok` only if every one succeeded, else every failure.
pub fn write_all(
    dests: &mut [Box<dyn Destination>],
    write: impl Fn(&mut dyn Destination) -> Result<(), String> + Sync,
) -> Result<(), String> {
    let Some((first, rest)) = dests.split_first_mut() else { return Ok(()) };
    if rest.is_empty() {
        return write(first.as_mut());
    }
    let write = &write;
    let mut errors = Vec::new();
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(rest.len());
        for dest in rest.iter_mut() {
            let started = std::thread::Builder::new()
                .name("warden-backup-write".to_owned())
                .spawn_scoped(scope, move || write(dest.as_mut()));
            match started {
                Ok(handle) => handles.push(handle),
                Err(e) => errors.push(format!("cannot start a writer thread: {e}")),
            }
        }
        if let Err(e) = write(first.as_mut()) {
            errors.push(e);
        }
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push("a destination's writer thread panicked".to_owned()),
            }
        }
    });
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// What the database's committed `data_version` means for one destination at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCheck {
    /// In step, empty, or behind (a snapshot covers the difference).
    Fine,
    /// Behind the database (the node wrote without this destination): logged as unusual.
    Behind {
        /// The destination's last version.
        last: u64,
        /// The database's.
        database: u64,
    },
    /// Its last record was acknowledged but never committed: it is rewound.
    Rewind {
        /// The record's version.
        last: u64,
        /// The database's.
        database: u64,
    },
}

/// Compares a destination's last version with the database's committed one (`None`: no
/// database or no version yet). `Err` is the refusal message, with both numbers.
pub fn start_check(
    dest: &dyn Destination,
    database: Option<u64>,
    database_name: &str,
) -> Result<StartCheck, String> {
    match (dest.last(), database) {
        (Some(l), None) if l > 0 => Err(format!(
            "refusing to run: {} is at data_version {l} but the database {database_name} has \
             data_version 0 (missing or new): restore it first (warden-backup restore)",
            dest.describe()
        )),
        (Some(l), Some(d)) if l > d.saturating_add(1) => Err(format!(
            "refusing to run: {} is at data_version {l}, ahead of the database {database_name} \
             at data_version {d}: the database was rolled back or replaced",
            dest.describe()
        )),
        (Some(l), Some(d)) if l == d.saturating_add(1) => {
            Ok(StartCheck::Rewind { last: l, database: d })
        }
        (Some(l), Some(d)) if l < d => Ok(StartCheck::Behind { last: l, database: d }),
        _ => Ok(StartCheck::Fine),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    #[derive(Debug)]
    struct At(Option<u64>);

    impl Destination for At {
        fn describe(&self) -> String {
            "the backup in test".to_owned()
        }
        fn last(&self) -> Option<u64> {
            self.0
        }
        fn append_sealed(&mut self, _: u64, _: &[u8]) -> Result<(), String> {
            Err("unused".to_owned())
        }
        fn snapshot_sealed(&mut self, _: u64, _: &[u8]) -> Result<(), String> {
            Err("unused".to_owned())
        }
        fn rewind_last(&mut self, _: u64) -> Result<(), String> {
            Err("unused".to_owned())
        }
    }

    #[test]
    fn start_check_names_both_numbers() {
        let check = |last, db| start_check(&At(last), db, "db");
        assert_eq!(check(None, None), Ok(StartCheck::Fine));
        assert_eq!(check(None, Some(7)), Ok(StartCheck::Fine));
        assert_eq!(check(Some(0), None), Ok(StartCheck::Fine));
        assert_eq!(check(Some(7), Some(7)), Ok(StartCheck::Fine));
        assert_eq!(check(Some(5), Some(7)), Ok(StartCheck::Behind { last: 5, database: 7 }));
        assert_eq!(check(Some(8), Some(7)), Ok(StartCheck::Rewind { last: 8, database: 7 }));
        let ahead = check(Some(9), Some(7)).unwrap_err();
        assert!(ahead.contains("data_version 9") && ahead.contains("data_version 7"), "{ahead}");
        assert!(ahead.contains("the backup in test"), "{ahead}");
        let missing = check(Some(3), None).unwrap_err();
        assert!(missing.contains("data_version 3") && missing.contains("data_version 0"));
    }

    #[derive(Debug)]
    struct Counting {
        appended: Vec<u64>,
        fail: bool,
    }

    impl Destination for Counting {
        fn describe(&self) -> String {
            "counting".to_owned()
        }
        fn last(&self) -> Option<u64> {
            self.appended.last().copied()
        }
        fn append_sealed(&mut self, data_version: u64, _: &[u8]) -> Result<(), String> {
            if self.fail {
                return Err(format!("cannot append {data_version}"));
            }
            self.appended.push(data_version);
            Ok(())
        }
        fn snapshot_sealed(&mut self, _: u64, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
        fn rewind_last(&mut self, _: u64) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn write_all_writes_every_destination_and_reports_every_failure() {
        let mut dests: Vec<Box<dyn Destination>> =
            (0..3).map(|_| Box::new(Counting { appended: Vec::new(), fail: false }) as _).collect();
        write_all(&mut dests, |d| d.append_sealed(1, b"x")).unwrap();
        write_all(&mut dests, |d| d.append_sealed(2, b"x")).unwrap();
        assert!(dests.iter().all(|d| d.last() == Some(2)));
        dests.push(Box::new(Counting { appended: Vec::new(), fail: true }));
        dests.push(Box::new(Counting { appended: Vec::new(), fail: true }));
        let e = write_all(&mut dests, |d| d.append_sealed(3, b"x")).unwrap_err();
        assert_eq!(e, "cannot append 3; cannot append 3");
        // The others wrote anyway (the plugin then answers otherwise than `continue`, and the
        // next start rewinds what the database did not commit).
        assert!(dests[..3].iter().all(|d| d.last() == Some(3)));
        let mut none: Vec<Box<dyn Destination>> = Vec::new();
        write_all(&mut none, |_| Err("never".to_owned())).unwrap();
    }
}
