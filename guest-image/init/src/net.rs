//! Interface and route configuration through the classic socket ioctls (no netlink
//! library, no `ip` binary in the image). The only module with unsafe code: the ioctls take
//! raw pointers to C structs. Each ioctl is tied to the one struct type its request expects.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use crate::netconfig::{NetworkPlan, prefix_to_netmask};

/// How long to wait for a NIC whose driver was just loaded to register.
const INTERFACE_WAIT: Duration = Duration::from_secs(5);
const INTERFACE_POLL: Duration = Duration::from_millis(100);

/// The `struct ifreq` requests used here. An enum, so the safe wrapper below cannot be
/// handed a request that expects a different struct.
#[derive(Clone, Copy)]
enum IfRequest {
    GetFlags,
    SetFlags,
    SetAddress,
    SetNetmask,
}

impl IfRequest {
    fn code(self) -> libc::c_ulong {
        match self {
            Self::GetFlags => libc::SIOCGIFFLAGS,
            Self::SetFlags => libc::SIOCSIFFLAGS,
            Self::SetAddress => libc::SIOCSIFADDR,
            Self::SetNetmask => libc::SIOCSIFNETMASK,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::GetFlags => "SIOCGIFFLAGS",
            Self::SetFlags => "SIOCSIFFLAGS",
            Self::SetAddress => "SIOCSIFADDR",
            Self::SetNetmask => "SIOCSIFNETMASK",
        }
    }
}

/// Sets IFF_UP on an interface (for `lo` the kernel then adds 127.0.0.1/8 itself).
pub fn bring_up(interface: &str) -> Result<(), String> {
    let fd = control_socket()?;
    set_up(&fd, interface)
}

/// Address, netmask, up, and a default route when a gateway is given.
pub fn configure(plan: &NetworkPlan) -> Result<(), String> {
    let fd = control_socket()?;
    let name = plan.interface.as_str();
    wait_for_interface(&fd, name)?;

    let mut request = new_ifreq(name)?;
    request.ifr_ifru.ifru_addr = sockaddr_v4(plan.address);
    if_ioctl(&fd, IfRequest::SetAddress, &mut request)?;

    let mut request = new_ifreq(name)?;
    request.ifr_ifru.ifru_netmask = sockaddr_v4(prefix_to_netmask(plan.prefix));
    if_ioctl(&fd, IfRequest::SetNetmask, &mut request)?;

    set_up(&fd, name)?;
    if let Some(gateway) = plan.gateway {
        add_default_route(&fd, name, gateway)?;
    }
    Ok(())
}

/// An AF_INET datagram socket: the handle the interface ioctls go through.
fn control_socket() -> Result<OwnedFd, String> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|error| format!("socket: {error}"))
}

/// Waits until the interface exists: the NIC driver was loaded moments ago.
fn wait_for_interface(fd: &OwnedFd, name: &str) -> Result<(), String> {
    let mut waited = Duration::ZERO;
    loop {
        let mut request = new_ifreq(name)?;
        match raw_if_ioctl(fd, IfRequest::GetFlags, &mut request) {
            Err(Errno::ENODEV) if waited < INTERFACE_WAIT => {
                thread::sleep(INTERFACE_POLL);
                waited += INTERFACE_POLL;
            }
            Err(error) => return Err(format!("SIOCGIFFLAGS {name}: {error}")),
            Ok(()) => return Ok(()),
        }
    }
}

/// Sets IFF_UP | IFF_RUNNING, keeping the other flags.
fn set_up(fd: &OwnedFd, name: &str) -> Result<(), String> {
    let mut request = new_ifreq(name)?;
    if_ioctl(fd, IfRequest::GetFlags, &mut request)?;
    // SAFETY: the union was zero-initialised and SIOCGIFFLAGS filled ifru_flags; every bit
    // pattern is a valid c_short.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    // IFF_UP | IFF_RUNNING is 0x41, well inside c_short.
    request.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    if_ioctl(fd, IfRequest::SetFlags, &mut request)
}

/// `route add default gw <gateway> dev <name>`; an existing default route is kept.
fn add_default_route(fd: &OwnedFd, name: &str, gateway: Ipv4Addr) -> Result<(), String> {
    let device = CString::new(name).map_err(|_| format!("bad interface name {name:?}"))?;
    // SAFETY: rtentry holds only integers, sockaddrs (integer arrays) and one raw pointer;
    // all-zero bytes are a valid value for each (the pointer becomes null).
    let mut route: libc::rtentry = unsafe { std::mem::zeroed() };
    route.rt_dst = sockaddr_v4(Ipv4Addr::UNSPECIFIED);
    route.rt_genmask = sockaddr_v4(Ipv4Addr::UNSPECIFIED);
    route.rt_gateway = sockaddr_v4(gateway);
    route.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
    // The kernel only reads the name (copies it in); `device` outlives the ioctl below.
    route.rt_dev = device.as_ptr().cast_mut();
    // SAFETY: SIOCADDRT takes a pointer to a struct rtentry, which `route` is, valid and
    // exclusively borrowed for the call; rt_dev points to a NUL-terminated string alive
    // until after the call. The fd is a socket we own.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCADDRT, &mut route) };
    match Errno::result(result) {
        Ok(_) | Err(Errno::EEXIST) => Ok(()),
        Err(error) => Err(format!("SIOCADDRT default via {gateway}: {error}")),
    }
}

/// A zeroed `struct ifreq` carrying the interface name.
fn new_ifreq(name: &str) -> Result<libc::ifreq, String> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.bytes().any(|b| b == 0) {
        return Err(format!("bad interface name {name:?}"));
    }
    // SAFETY: ifreq is a name array plus a union of integers, sockaddrs and a raw pointer;
    // all-zero bytes are a valid value for each.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    // The name is shorter than IFNAMSIZ, so the zeroed tail keeps it NUL-terminated.
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = libc::c_char::from_ne_bytes([byte]);
    }
    Ok(request)
}

/// An IPv4 `struct sockaddr_in` in its generic `struct sockaddr` form, built field by field
/// (family, then port 0 and the address in network order inside sa_data).
fn sockaddr_v4(address: Ipv4Addr) -> libc::sockaddr {
    let mut data: [libc::c_char; 14] = [0; 14];
    for (slot, byte) in data.iter_mut().skip(2).zip(address.octets()) {
        *slot = libc::c_char::from_ne_bytes([byte]);
    }
    libc::sockaddr {
        // AF_INET is 2, which fits sa_family_t.
        sa_family: libc::AF_INET as libc::sa_family_t,
        sa_data: data,
    }
}

/// An ifreq ioctl with its error named after the request and interface.
fn if_ioctl(fd: &OwnedFd, kind: IfRequest, request: &mut libc::ifreq) -> Result<(), String> {
    raw_if_ioctl(fd, kind, request).map_err(|error| {
        let name: String = request
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| char::from(c.to_ne_bytes()[0]))
            .collect();
        format!("{} {name}: {error}", kind.name())
    })
}

fn raw_if_ioctl(fd: &OwnedFd, kind: IfRequest, request: &mut libc::ifreq) -> Result<(), Errno> {
    // SAFETY: every IfRequest is a SIOC[GS]IF* request whose argument is a pointer to a
    // struct ifreq; `request` is one, valid and exclusively borrowed for the call, so the
    // kernel may read and (for SIOCGIFFLAGS) write it. The fd is a socket we own.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), kind.code(), request as *mut libc::ifreq) };
    Errno::result(result).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_layout_matches_sockaddr_in() {
        let raw = sockaddr_v4(Ipv4Addr::new(10, 0, 2, 200));
        assert_eq!(i32::from(raw.sa_family), libc::AF_INET);
        let bytes: Vec<u8> = raw.sa_data.iter().map(|c| c.to_ne_bytes()[0]).collect();
        assert_eq!(bytes, [0, 0, 10, 0, 2, 200, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn ifreq_names_are_bounded() {
        assert!(new_ifreq("").is_err());
        assert!(new_ifreq("abcdefghijklmnop").is_err());
        assert!(new_ifreq("a\0b").is_err());
        let name = new_ifreq("eth0").map(|request| {
            request
                .ifr_name
                .iter()
                .map(|c| c.to_ne_bytes()[0])
                .collect::<Vec<u8>>()
        });
        assert_eq!(name, Ok(b"eth0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec()));
    }
}
