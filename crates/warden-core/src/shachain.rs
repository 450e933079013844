//! BOLT-03 per-commitment secrets: generation from a seed and compact storage.
