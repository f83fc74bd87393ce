//! Run-time helpers for expressions compiled from the composition language.
