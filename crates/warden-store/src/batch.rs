//! Backend-independent checks of a commit batch, run before any backend is touched.

use core::fmt;
use std::collections::BTreeSet;
use std::error::Error;

use crate::{Hex, Op, Version, MAX_KEY_LEN, MAX_VALUE_LEN};

/// A malformed batch: rejected before the backend is touched.
#[derive(Clone, PartialEq, Eq)]
pub enum BatchError {
    /// A key is empty.
    EmptyKey,
    /// A key is longer than [`MAX_KEY_LEN`].
    KeyTooLong {
        /// The key's length.
        len: usize,
    },
    /// A value is larger than [`MAX_VALUE_LEN`].
    ValueTooLarge {
        /// The key the value was for.
        key: Vec<u8>,
        /// The value's length.
        len: usize,
    },
    /// The same key appears twice in one batch.
    DuplicateKey {
        /// The repeated key.
        key: Vec<u8>,
    },
    /// A put's new version is not greater than its expected version.
    VersionNotIncreasing {
        /// The key.
        key: Vec<u8>,
        /// The expected (current) version.
        expected: Version,
        /// The rejected new version.
        new: Version,
    },
    /// A version exceeds [`Version::MAX`].
    VersionOutOfRange {
        /// The key.
        key: Vec<u8>,
        /// The rejected version.
        version: Version,
    },
    /// A delete expects the key to be absent.
    DeleteAbsent {
        /// The key.
        key: Vec<u8>,
    },
}

impl fmt::Debug for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::EmptyKey => f.write_str("empty key"),
            BatchError::KeyTooLong { len } => {
                write!(f, "key of {len} bytes, at most {MAX_KEY_LEN} allowed")
            }
            BatchError::ValueTooLarge { key, len } => write!(
                f,
                "value of {len} bytes for key {}, at most {MAX_VALUE_LEN} allowed",
                Hex(key)
            ),
            BatchError::DuplicateKey { key } => {
                write!(f, "key {} appears more than once in the batch", Hex(key))
            }
            BatchError::VersionNotIncreasing { key, expected, new } => write!(
                f,
                "new version {new} of key {} does not exceed expected version {expected}",
                Hex(key)
            ),
            BatchError::VersionOutOfRange { key, version } => write!(
                f,
                "version {version} of key {} exceeds the maximum {}",
                Hex(key),
                Version::MAX
            ),
            BatchError::DeleteAbsent { key } => {
                write!(f, "delete of key {} expects it to be absent", Hex(key))
            }
        }
    }
}

impl Error for BatchError {}

/// Checks the shape of a batch: key and value sizes, unique keys, increasing versions.
pub(crate) fn validate(batch: &[Op]) -> Result<(), BatchError> {
    let mut seen = BTreeSet::new();
    for op in batch {
        let key = op.key();
        if key.is_empty() {
            return Err(BatchError::EmptyKey);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(BatchError::KeyTooLong { len: key.len() });
        }
        if !seen.insert(key) {
            return Err(BatchError::DuplicateKey { key: key.to_vec() });
        }
        let expected = op.expected_version();
        if expected > Version::MAX {
            return Err(BatchError::VersionOutOfRange { key: key.to_vec(), version: expected });
        }
        match op {
            Op::Put { new_version, value, .. } => {
                if *new_version <= expected {
                    return Err(BatchError::VersionNotIncreasing {
                        key: key.to_vec(),
                        expected,
                        new: *new_version,
                    });
                }
                if *new_version > Version::MAX {
                    return Err(BatchError::VersionOutOfRange {
                        key: key.to_vec(),
                        version: *new_version,
                    });
                }
                if value.len() > MAX_VALUE_LEN {
                    return Err(BatchError::ValueTooLarge { key: key.to_vec(), len: value.len() });
                }
            }
            Op::Delete { .. } => {
                if expected.is_absent() {
                    return Err(BatchError::DeleteAbsent { key: key.to_vec() });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8], expected: u64, new: u64) -> Op {
        Op::Put {
            key: key.to_vec(),
            expected_version: Version::new(expected),
            new_version: Version::new(new),
            value: vec![1],
        }
    }

    #[test]
    fn accepts_well_formed_batches() {
        assert_eq!(validate(&[]), Ok(()));
        assert_eq!(
            validate(&[
                put(b"a", 0, 1),
                put(b"b", 7, 9),
                Op::Delete { key: b"c".to_vec(), expected_version: Version::new(3) },
            ]),
            Ok(())
        );
        assert_eq!(validate(&[put(b"a", 0, Version::MAX.get())]), Ok(()));
    }

    #[test]
    fn rejects_malformed_batches() {
        assert_eq!(validate(&[put(b"", 0, 1)]), Err(BatchError::EmptyKey));
        assert_eq!(
            validate(&[put(&[0; MAX_KEY_LEN + 1], 0, 1)]),
            Err(BatchError::KeyTooLong { len: MAX_KEY_LEN + 1 })
        );
        assert_eq!(
            validate(&[put(b"a", 0, 1), put(b"a", 1, 2)]),
            Err(BatchError::DuplicateKey { key: b"a".to_vec() })
        );
        assert_eq!(
            validate(&[put(b"a", 2, 2)]),
            Err(BatchError::VersionNotIncreasing {
                key: b"a".to_vec(),
                expected: Version::new(2),
                new: Version::new(2)
            })
        );
        assert_eq!(
            validate(&[put(b"a", 0, Version::MAX.get() + 1)]),
            Err(BatchError::VersionOutOfRange {
                key: b"a".to_vec(),
                version: Version::new(Version::MAX.get() + 1)
            })
        );
        assert_eq!(
            validate(&[Op::Delete { key: b"a".to_vec(), expected_version: Version::ABSENT }]),
            Err(BatchError::DeleteAbsent { key: b"a".to_vec() })
        );
        let big = Op::Put {
            key: b"a".to_vec(),
            expected_version: Version::ABSENT,
            new_version: Version::new(1),
            value: vec![0; MAX_VALUE_LEN + 1],
        };
        assert_eq!(
            validate(&[big]),
            Err(BatchError::ValueTooLarge { key: b"a".to_vec(), len: MAX_VALUE_LEN + 1 })
        );
    }
}
