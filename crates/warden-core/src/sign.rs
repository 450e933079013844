//! Signatures byte-identical to Core Lightning's `hsmd`.
