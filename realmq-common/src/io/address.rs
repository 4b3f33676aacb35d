//! Addresses on the command line: an IP literal (`127.0.0.1:5555`, `[::1]:5555`) or a host
//! name (`localhost:5555`, `server.lan:5555`), resolved once at start-up.

use std::net::{SocketAddr, ToSocketAddrs};

/// Parses `HOST:PORT`, resolving a host name with the system resolver (an IPv4 address is
/// preferred when a name has both, as most test set-ups bind IPv4). Shaped for clap's
/// `value_parser`: an error is one line for the user.
pub fn parse_address(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !s.contains(':') {
        return Err(format!(
            "`{s}` has no port: give HOST:PORT, e.g. localhost:5555"
        ));
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{s}`: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost() {
        assert_eq!(
            parse_address("127.0.0.1:5555"),
            Ok("127.0.0.1:5555".parse().unwrap())
        );
        assert_eq!(parse_address("[::1]:7"), Ok("[::1]:7".parse().unwrap()));
        let local = parse_address("localhost:5555").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 5555, "{local}");
        assert!(parse_address("localhost").unwrap_err().contains("no port"));
        assert!(parse_address("nowhere.invalid:1")
            .unwrap_err()
            .contains("cannot resolve"));
    }
}
