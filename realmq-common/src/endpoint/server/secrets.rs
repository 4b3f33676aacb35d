//! The secrets a server draws at start: the cookie key and the seed of its generator.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Secrets a [`Server`](super::Server) needs, drawn by the binary from the operating system's CSPRNG.
#[derive(Clone)]
pub struct ServerSecrets {
    /// Key of the address-validation cookies.
    pub cookie_key: [u8; 32],
    /// Seed of the ChaCha20 generator for session ids and server nonces.
    pub rng_seed: [u8; 32],
}

impl ServerSecrets {
    /// Secrets derived from `seed`, for deterministic tests and simulations only: anyone who
    /// knows the seed can forge cookies and predict session ids.
    pub fn from_test_seed(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut secrets = Self {
            cookie_key: [0; 32],
            rng_seed: [0; 32],
        };
        rng.fill_bytes(&mut secrets.cookie_key);
        rng.fill_bytes(&mut secrets.rng_seed);
        secrets
    }
}

impl std::fmt::Debug for ServerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecrets(..)")
    }
}
