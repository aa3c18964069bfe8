//! The report's stage graph as an inline SVG that scales to the page: one row per rank (the
//! longest path from a source), one box per stage, an arrow per dependency.
//!
//! Owns: the layout and drawing. An edge between adjacent ranks is a straight line through the
//! gap between their rows; an edge that skips ranks leaves through the gap under its source, runs
//! down its own lane left of every box and enters its target from the gap above it, so no edge
//! hides behind a box. Deliberately does not own: the graph itself (`repro-engine`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use repro_engine::pipeline::Pipeline;
use repro_tables::table::html_escape;

const W: usize = 150;
const H: usize = 28;
const GAP_X: usize = 16;
const GAP_Y: usize = 44;
/// Horizontal distance between the lanes of rank-skipping edges.
const LANE: usize = 8;

/// The graph as an `<svg class="dag">` whose width follows the page (viewBox, CSS width 100%).
pub(super) fn svg(p: &Pipeline) -> String {
    // Stages are in dependency order, so every upstream depth is known before its users'.
    let mut depth = vec![0usize; p.stages.len()];
    for (i, s) in p.stages.iter().enumerate() {
        depth[i] = s.upstream.iter().map(|&u| depth[u] + 1).max().unwrap_or(0);
    }
    let mut slot = vec![0usize; p.stages.len()];
    let mut per_depth: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, &d) in depth.iter().enumerate() {
        let n = per_depth.entry(d).or_insert(0);
        slot[i] = *n;
        *n += 1;
    }
    let skips: Vec<(usize, usize)> = p
        .stages
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.upstream.iter().map(move |&u| (u, i)))
        .filter(|&(u, i)| depth[i] > depth[u] + 1)
        .collect();
    let left = 6 + skips.len() * LANE;
    let ranks = per_depth.len();
    let widest = per_depth.values().max().copied().unwrap_or(0);
    let width = left + widest * (W + GAP_X) + 6;
    let height = ranks * (H + GAP_Y) + 10;
    let pos = |i: usize| (left + slot[i] * (W + GAP_X), 6 + depth[i] * (H + GAP_Y));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg class=\"dag\" viewBox=\"0 0 {width} {height}\" style=\"max-width:{width}px\" role=\"img\" aria-label=\"stage graph\">"
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker></defs>\n");
    let mut lane = 0;
    for (i, s) in p.stages.iter().enumerate() {
        let (x2, y2) = pos(i);
        for &u in &s.upstream {
            let (x1, y1) = pos(u);
            let (sx, sy, tx, ty) = (x1 + W / 2, y1 + H, x2 + W / 2, y2);
            let points = if depth[i] == depth[u] + 1 {
                format!("{sx},{sy} {tx},{ty}")
            } else {
                // Offsets keep parallel lanes and their turns apart.
                let lx = 6 + lane * LANE;
                let below = sy + GAP_Y / 3 + (lane % 3) * 4;
                let above = ty - GAP_Y / 3 - (lane % 3) * 4;
                lane += 1;
                format!("{sx},{sy} {sx},{below} {lx},{below} {lx},{above} {tx},{above} {tx},{ty}")
            };
            let _ = writeln!(
                out,
                "<polyline points=\"{points}\" fill=\"none\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>"
            );
        }
    }
    for (i, s) in p.stages.iter().enumerate() {
        let (x, y) = pos(i);
        let _ = writeln!(
            out,
            "<g><rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"4\" fill=\"#eef3f8\" stroke=\"#245\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\" font-family=\"sans-serif\">{}</text></g>",
            x + W / 2,
            y + H / 2 + 4,
            html_escape(&s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}
