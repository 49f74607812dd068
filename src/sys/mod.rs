//! The only module with `unsafe`: thin wrappers over system calls that nix and libc don't
//! cover safely. Every block states the invariant that makes it sound.

#![allow(unsafe_code)]
