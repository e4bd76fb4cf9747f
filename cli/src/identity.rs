//! Identity files: the PEM private keys `dfx identity` writes (Ed25519 PKCS#8 or secp256k1 EC).
//!
//! Only the shape is checked here; turning the key into a signer needs the agent, which real
//! networks will bring.

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

#[cfg(test)]
mod tests {
    use super::check_pem;

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
