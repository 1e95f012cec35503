//! Picks free loopback ports for a control plane and checks whether a port still listens.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The three ports one control plane listens on, all on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// kube-apiserver's secure port.
    pub api: u16,
    /// etcd client port.
    pub etcd: u16,
    /// etcd peer port.
    pub etcd_peer: u16,
}

impl Ports {
    /// All three ports, for checks that none of them listens any more.
    pub fn all(&self) -> [u16; 3] {
        [self.api, self.etcd, self.etcd_peer]
    }
}

/// Picks `n` sets of free ports at once (every listener is held until all are picked, so the
/// sets do not overlap). Another process may still take a port before the control plane binds
/// it; starting a site retries with new ports when that happens.
pub fn pick(n: usize) -> io::Result<Vec<Ports>> {
    let listeners = (0..n * 3)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<Vec<_>>>()?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<io::Result<Vec<_>>>()?;
    Ok(ports
        .chunks_exact(3)
        .map(|c| Ports {
            api: c[0],
            etcd: c[1],
            etcd_peer: c[2],
        })
        .collect())
}

/// Picks `n` distinct free loopback ports at once (same caveat as [`pick`]).
pub fn pick_ports(n: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn is_listening(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_distinct_free_ports() {
        let sets = pick(3).unwrap();
        let mut all: Vec<u16> = sets.iter().flat_map(Ports::all).collect();
        assert_eq!(all.len(), 9);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 9, "ports overlap: {sets:?}");
        assert!(all.iter().all(|p| *p != 0));
    }

    #[test]
    fn sees_a_listener() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(is_listening(port));
        drop(l);
        assert!(!is_listening(port));
    }
}
