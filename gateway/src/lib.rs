//! canvid gateway (work in progress).
