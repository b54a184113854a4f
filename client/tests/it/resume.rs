//! crash/resume tests (below)
