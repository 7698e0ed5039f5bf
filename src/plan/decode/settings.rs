//! The `batching` and `gateway` sections: flat tables of bounded settings with defaults.

use super::keys::{BATCHING_KEYS, GATEWAY_KEYS};
use super::values::human_duration;
use super::walker::{as_str, int_in, Ctx, Table};
use super::MAX_BATCH_COUNT;
use crate::plan::node::Node;
use crate::plan::types::{Batching, GatewaySettings};

pub(super) fn batching(ctx: &mut Ctx<'_>, node: &Node) -> Option<Batching> {
    let mut t = Table::new(ctx, node, "batching", BATCHING_KEYS)?;
    let count = t
        .required(ctx, "batch-count")
        .and_then(|n| int_in(ctx, n, "batching.batch-count", 1, MAX_BATCH_COUNT));
    let index_node = t.required(ctx, "batch-index");
    let idx = index_node.and_then(|n| int_in(ctx, n, "batching.batch-index", 0, MAX_BATCH_COUNT));
    t.finish(ctx);
    let (count, idx) = (count?, idx?);
    if idx >= count {
        ctx.err_hint(
            index_node?.loc,
            "batching.batch-index",
            format!("batch index {idx} is out of range for batch-count {count}"),
            format!("allowed: 0..={}", count - 1),
        );
        return None;
    }
    Some(Batching {
        count: u32::try_from(count).ok()?,
        index: u32::try_from(idx).ok()?,
    })
}

pub(super) fn gateway(ctx: &mut Ctx<'_>, node: &Node) -> Option<GatewaySettings> {
    let mut t = Table::new(ctx, node, "gateway", GATEWAY_KEYS)?;
    let mut g = GatewaySettings::default();
    let before = ctx.errors.len();
    if let Some(n) = t.get("host") {
        if let Some(s) = as_str(ctx, n, "gateway.host") {
            if s.trim().is_empty() || s.contains(char::is_whitespace) {
                ctx.err(n.loc, "gateway.host", format!("bad host `{s}`"));
            }
            g.host = s.to_string();
        }
    }
    if let Some(n) = t.get("port") {
        if let Some(v) = int_in(ctx, n, "gateway.port", 1, 65535) {
            g.port = v as u16;
        }
    }
    if let Some(n) = t.get("client-id") {
        if let Some(v) = int_in(ctx, n, "gateway.client-id", 0, i64::from(i32::MAX)) {
            g.client_id = v as i32;
        }
    }
    if let Some(n) = t.get("connect-timeout") {
        if let Some(v) = human_duration(ctx, n, "gateway.connect-timeout", 1) {
            g.connect_timeout_ms = v;
        }
    }
    if let Some(n) = t.get("request-timeout") {
        if let Some(v) = human_duration(ctx, n, "gateway.request-timeout", 1) {
            g.request_timeout_ms = v;
        }
    }
    if let Some(n) = t.get("max-in-flight") {
        if let Some(v) = int_in(ctx, n, "gateway.max-in-flight", 1, 50) {
            g.max_in_flight = v as u32;
        }
    }
    if let Some(n) = t.get("reconnect-for") {
        if let Some(v) = human_duration(ctx, n, "gateway.reconnect-for", 0) {
            g.reconnect_for_ms = v;
        }
    }
    if let Some(n) = t.get("max-attempts") {
        if let Some(v) = int_in(ctx, n, "gateway.max-attempts", 1, 100) {
            g.max_attempts = v as u32;
        }
    }
    t.finish(ctx);
    (ctx.errors.len() == before).then_some(g)
}
