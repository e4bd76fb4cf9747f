//! What the HTTP interface server (`canvid-http-interface`) needs from the replica beyond the
//! pocket-ic-shaped API and the ingress API: whether a round has work to do.

use crate::Replica;

impl Replica {
    /// True while messages are queued (ingress, inter-canister requests or responses): the HTTP
    /// server's driver thread runs rounds while this holds and idles otherwise.
    pub fn has_pending_work(&self) -> bool {
        self.lock().has_work()
    }
}
