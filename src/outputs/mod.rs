//! Live outputs: subscribers that send a stream's motion to other programs as it is tracked (VMC to
//! VSeeFace, Warudo, VMagicMirror, Unity). The formats themselves are in [`crate::motion`], which knows
//! nothing of streams.

pub mod vmc;
