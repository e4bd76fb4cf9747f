pub mod cycles;
pub mod engine;
pub mod ids;
pub mod memory;
