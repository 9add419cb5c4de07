//! One request as the handlers see it, passed down explicitly from the server: who asks (the
//! kernel's word), through which socket, under which policy, and on which connection.
//!
//! Connection threads are reused, so nothing about a request may live in a thread-local: a value
//! left behind by one request would be read by the next, possibly another peer's.

use std::sync::Arc;

use crate::handlers::import::Connection;
use crate::state::Live;
use crate::system::peer::{Peer, SocketKind};

pub struct Context<'c> {
    pub peer: Peer,
    pub socket: SocketKind,
    /// The policy in force when the request arrived, for all of it: a reload meanwhile cannot
    /// mix two policies in one request.
    pub live: Arc<Live>,
    /// What the connection carries from one request to the next (rows staged for an import).
    pub conn: &'c mut Connection,
}
