//! Identity files: the PEM private keys `dfx identity` writes (Ed25519 PKCS#8 or secp256k1 EC).
//!
//! [`check_pem`] checks the shape first so a wrong file gets a precise message; the agent
//! (`crate::network::load_identity`) turns the key into a signer. [`new_ed25519_pem`] makes the
//! identity the CLI creates when none is given.

/// Checks that `text` holds one PEM private key block with a base64 body.
pub fn check_pem(text: &str) -> Result<(), String> {
    let begin = text
        .find("-----BEGIN ")
        .ok_or("it is not a PEM file (no -----BEGIN line)")?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or("malformed PEM header")?;
    let label = &rest[..label_end];
    if !label.contains("PRIVATE KEY") {
        return Err(format!("it holds a {label}, not a private key"));
    }
    let body_and_end = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body_and_end
        .find(&end_marker)
        .ok_or_else(|| format!("missing {end_marker}"))?;
    let body: String = body_and_end[..end].split_whitespace().collect();
    if body.is_empty() {
        return Err("the PEM block is empty".into());
    }
    if !body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        || !body.len().is_multiple_of(4)
    {
        return Err("the PEM body is not valid base64".into());
    }
    Ok(())
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A new Ed25519 private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form
/// `dfx identity new` writes and `ic-agent`'s `BasicIdentity::from_pem` reads.
pub fn new_ed25519_pem() -> Result<String, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)?;
    Ok(ed25519_pem(&seed))
}

/// The PKCS#8 PEM of the Ed25519 key with `seed`.
pub fn ed25519_pem(seed: &[u8; 32]) -> String {
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(seed);
    let b64 = base64(&der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

/// Writes a private key readable by its owner only (0600 on Unix), failing if it exists.
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{base64, check_pem, ed25519_pem};

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn generated_pem_is_what_dfx_writes() {
        let pem = ed25519_pem(&[7u8; 32]);
        assert_eq!(check_pem(&pem), Ok(()));
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA"));
    }

    const ED25519: &str = "-----BEGIN PRIVATE KEY-----\nMFMCAQEwBQYDK2VwBCIEIBdNR6eLnhWjFZ0S2x7zkHRs/G4bzBnOiWVP+MzMvCMj\noSMDIQBLrT2e1BMUsVXfVpJr5KHP7bZhtmDWMxHGpiKiXl+t7Q==\n-----END PRIVATE KEY-----\n";

    #[test]
    fn accepts_a_private_key() {
        assert_eq!(check_pem(ED25519), Ok(()));
        assert_eq!(
            check_pem(&ED25519.replace("PRIVATE KEY", "EC PRIVATE KEY")),
            Ok(())
        );
    }

    #[test]
    fn rejects_other_files() {
        assert!(check_pem("hello").unwrap_err().contains("not a PEM"));
        assert!(check_pem(&ED25519.replace("PRIVATE KEY", "CERTIFICATE"))
            .unwrap_err()
            .contains("not a private key"));
        assert!(
            check_pem("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----")
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            check_pem("-----BEGIN PRIVATE KEY-----\nab!d\n-----END PRIVATE KEY-----")
                .unwrap_err()
                .contains("base64")
        );
        assert!(check_pem("-----BEGIN PRIVATE KEY-----\nabcd\n")
            .unwrap_err()
            .contains("missing"));
    }
}
