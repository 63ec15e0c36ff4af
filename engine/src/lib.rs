//! refine-engine: from rule files to a typed, validated target graph; keys; planning;
//! execution; stores.
