//! A minimal rtnetlink client: just the link and address requests that
//! moving `linux.netDevices` into a container needs. Hand-written (a few
//! hundred bytes of wire format) rather than an async netlink stack: hull
//! stays single-threaded and small.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
};

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

/// One interface address, as dumped, ready to be added again elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub family: u8,
    pub prefix_len: u8,
    pub scope: u8,
    /// IFA_F_* flags (the 32-bit IFA_FLAGS attribute when present).
    pub flags: u32,
    /// IFA_LOCAL, IFA_ADDRESS and IFA_BROADCAST, verbatim.
    pub attrs: Vec<(u16, Vec<u8>)>,
}

impl Address {
    /// Permanent, global-scope addresses are the ones a device keeps when it
    /// moves (runtime-spec netDevices, RFC 3549 2.3.3.2).
    pub fn is_permanent_global(&self) -> bool {
        self.flags & libc::IFA_F_PERMANENT != 0 && self.scope == libc::RT_SCOPE_UNIVERSE
    }

    /// Human form for error messages: "10.1.2.3/24".
    pub fn display(&self) -> String {
        let raw = self
            .attrs
            .iter()
            .find(|(t, _)| *t == libc::IFA_LOCAL)
            .or_else(|| self.attrs.iter().find(|(t, _)| *t == libc::IFA_ADDRESS))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[]);
        let ip = match raw.len() {
            4 => <[u8; 4]>::try_from(raw)
                .map(|a| std::net::IpAddr::from(a).to_string())
                .unwrap_or_default(),
            16 => <[u8; 16]>::try_from(raw)
                .map(|a| std::net::IpAddr::from(a).to_string())
                .unwrap_or_default(),
            _ => "?".into(),
        };
        format!("{ip}/{}", self.prefix_len)
    }
}

/// A network interface as a link dump shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    pub name: String,
    pub up: bool,
}

/// A NETLINK_ROUTE socket, bound to the network namespace it was made in.
pub struct Route {
    fd: OwnedFd,
    seq: u32,
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// Iterate the rtattrs of a message body.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = &b[len.next_multiple_of(4).min(b.len())..];
        Some((typ, data))
    })
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut m = vec![0u8; 4]; // family AF_UNSPEC, pad, type
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&change.to_ne_bytes());
    m
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0)
}

impl Route {
    pub fn open() -> nix::Result<Route> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        Ok(Route { fd, seq: 0 })
    }

    /// Send one request; return the bodies of the replies (for a dump, every
    /// part until NLMSG_DONE; otherwise nothing once the kernel acks).
    /// `dump` is separate from `flags`: NLM_F_DUMP's bits mean CREATE|EXCL
    /// on a NEW request.
    fn request(
        &mut self,
        typ: u16,
        dump: bool,
        flags: u16,
        body: &[u8],
    ) -> nix::Result<Vec<Vec<u8>>> {
        self.seq += 1;
        let seq = self.seq;
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        let mut flags = flags | libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16;
        if dump {
            flags |= libc::NLM_F_DUMP as u16;
        }
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;

        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                r => r?,
            };
            let mut b = &buf[..n];
            while b.len() >= NLMSG_HDRLEN {
                let len = u32_at(b, 0) as usize;
                if len < NLMSG_HDRLEN || len > b.len() {
                    return Err(Errno::EBADMSG);
                }
                let mtype = u16::from_ne_bytes([b[4], b[5]]);
                let mseq = u32_at(b, 8);
                let payload = &b[NLMSG_HDRLEN..len];
                b = &b[len.next_multiple_of(4).min(b.len())..];
                if mseq != seq {
                    continue;
                }
                match mtype as i32 {
                    libc::NLMSG_ERROR => {
                        let code = u32_at(payload, 0) as i32;
                        if code != 0 {
                            return Err(Errno::from_raw(-code));
                        }
                        if !dump {
                            return Ok(out);
                        }
                    }
                    // A dump that failed part-way says so in DONE's payload.
                    libc::NLMSG_DONE => match u32_at(payload, 0) as i32 {
                        code if code < 0 => return Err(Errno::from_raw(-code)),
                        _ => return Ok(out),
                    },
                    _ => out.push(payload.to_vec()),
                }
            }
        }
    }

    /// Every link in this namespace.
    pub fn links(&mut self) -> nix::Result<Vec<Link>> {
        let replies = self.request(libc::RTM_GETLINK, true, 0, &ifinfomsg(0, 0, 0))?;
        Ok(replies
            .iter()
            .filter(|r| r.len() >= IFINFOMSG_LEN)
            .filter_map(|r| {
                let index = u32_at(r, 4) as i32;
                let up = u32_at(r, 8) & libc::IFF_UP as u32 != 0;
                let name = attrs(&r[IFINFOMSG_LEN..])
                    .find(|(t, _)| *t == libc::IFLA_IFNAME)
                    .map(|(_, d)| {
                        String::from_utf8_lossy(d.split(|c| *c == 0).next().unwrap_or(d))
                            .into_owned()
                    })?;
                Some(Link { index, name, up })
            })
            .collect())
    }

    pub fn link(&mut self, name: &str) -> nix::Result<Option<Link>> {
        Ok(self.links()?.into_iter().find(|l| l.name == name))
    }

    pub fn set_up(&mut self, index: i32, up: bool) -> nix::Result<()> {
        let flags = if up { libc::IFF_UP as u32 } else { 0 };
        self.request(
            libc::RTM_NEWLINK,
            false,
            0,
            &ifinfomsg(index, flags, libc::IFF_UP as u32),
        )?;
        Ok(())
    }

    /// Move a link into the network namespace `netns` and rename it to
    /// `name`, in one request. The kernel still does it in two steps: if the
    /// rename fails, the link is left in `netns` under its old name (the
    /// failed create then tears that namespace down).
    pub fn move_to(&mut self, index: i32, name: &str, netns: &impl AsFd) -> nix::Result<()> {
        let mut body = ifinfomsg(index, 0, 0);
        let mut cname = name.as_bytes().to_vec();
        cname.push(0);
        attr(&mut body, libc::IFLA_IFNAME, &cname);
        let fd = netns.as_fd().as_raw_fd() as u32;
        attr(&mut body, libc::IFLA_NET_NS_FD, &fd.to_ne_bytes());
        self.request(libc::RTM_NEWLINK, false, 0, &body)?;
        Ok(())
    }

    pub fn addresses(&mut self, index: i32) -> nix::Result<Vec<Address>> {
        let replies = self.request(libc::RTM_GETADDR, true, 0, &[0u8; 8])?;
        Ok(replies
            .iter()
            .filter(|r| r.len() >= IFADDRMSG_LEN && u32_at(r, 4) as i32 == index)
            .map(|r| {
                let mut a = Address {
                    family: r[0],
                    prefix_len: r[1],
                    flags: r[2] as u32,
                    scope: r[3],
                    attrs: Vec::new(),
                };
                for (t, d) in attrs(&r[IFADDRMSG_LEN..]) {
                    match t {
                        libc::IFA_FLAGS => a.flags = u32_at(d, 0),
                        libc::IFA_LOCAL | libc::IFA_ADDRESS | libc::IFA_BROADCAST => {
                            a.attrs.push((t, d.to_vec()))
                        }
                        _ => {}
                    }
                }
                a
            })
            .collect())
    }

    pub fn add_address(&mut self, index: i32, a: &Address) -> nix::Result<()> {
        let mut body = vec![a.family, a.prefix_len, 0, a.scope];
        body.extend_from_slice(&(index as u32).to_ne_bytes());
        for (t, d) in &a.attrs {
            attr(&mut body, *t, d);
        }
        // The configuration flags an address was made with (nodad and the
        // like); state flags such as tentative or deprecated are the
        // kernel's to set.
        let flags = a.flags
            & (libc::IFA_F_NODAD
                | libc::IFA_F_OPTIMISTIC
                | libc::IFA_F_HOMEADDRESS
                | libc::IFA_F_MANAGETEMPADDR
                | libc::IFA_F_NOPREFIXROUTE
                | libc::IFA_F_MCAUTOJOIN);
        attr(&mut body, libc::IFA_FLAGS, &flags.to_ne_bytes());
        self.request(
            libc::RTM_NEWADDR,
            false,
            (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
            &body,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut b = Vec::new();
        attr(&mut b, libc::IFLA_IFNAME, b"eth0\0");
        attr(&mut b, libc::IFLA_NET_NS_FD, &7u32.to_ne_bytes());
        assert_eq!(b.len(), 12 + 8);
        let got: Vec<(u16, Vec<u8>)> = attrs(&b).map(|(t, d)| (t, d.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (libc::IFLA_IFNAME, b"eth0\0".to_vec()),
                (libc::IFLA_NET_NS_FD, 7u32.to_ne_bytes().to_vec())
            ]
        );
    }

    #[test]
    fn truncated_attributes_stop_cleanly() {
        assert_eq!(attrs(&[8, 0, 3, 0, 1]).count(), 0);
    }
}
