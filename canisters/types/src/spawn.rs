//! Candid types of the spawn canister. (Filled in by the spawn canister work.)
