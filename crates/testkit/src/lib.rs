//! Test helpers for ringway (being written).
