//! Secrets and unpredictable values from the operating system's CSPRNG (`getrandom`):
//! session ids, nonces, cookie keys. The sans-IO state machines never draw randomness
//! themselves; the binaries draw it here and pass it in.

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)?;
    Ok(out)
}

/// A random `u64` from the operating system.
pub fn random_u64() -> Result<u64, getrandom::Error> {
    random_bytes::<8>().map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ() {
        // Two equal 256-bit draws would mean a broken source (probability 2^-256).
        assert_ne!(random_bytes::<32>().unwrap(), random_bytes::<32>().unwrap());
        assert_ne!(random_u64().unwrap(), random_u64().unwrap());
    }
}
