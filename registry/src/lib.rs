//! bay-registry
