//! The stage graph: who produces each dep, and an order in which every stage follows its inputs.
//!
//! Owns: linking deps to producing stages (rejecting outputs declared twice or nested), the
//! dependency order, and reporting a cycle as a path. Deliberately does not own: parsing stages.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::cx::Cx;
use super::model::Stage;

/// Finds which stage produces each dep, and rejects outputs declared twice or nested in each
/// other. Uses an ordered map of outputs so large pipelines stay fast: a path's producers are
/// the output equal to it, the outputs that are folders above it, and the outputs inside it.
pub(super) fn link(cx: &mut Cx, stages: &mut [Stage]) {
    let mut owners: BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, s) in stages.iter().enumerate() {
        for o in &s.outs {
            owners.entry(o.as_str()).or_default().push(i);
        }
    }
    let producers = |path| producers(&owners, path);
    let mut problems = Vec::new();
    for (i, s) in stages.iter().enumerate() {
        for o in &s.outs {
            for (j, other) in producers(o) {
                // Report each clash once, at the later stage.
                if j > i || (j == i && other == o) {
                    continue;
                }
                problems.push((other.to_string(), j, o.clone(), i));
            }
        }
    }
    // In file order: by the later stage, then the earlier one.
    problems.sort_by(|a, b| (a.3, a.1, &a.0, &a.2).cmp(&(b.3, b.1, &b.0, &b.2)));
    problems.dedup();
    for (pa, ia, pb, ib) in problems {
        let what = if pa == pb {
            format!(
                "output `{pa}` is declared by two stages, `{}` and `{}`",
                stages[ia].name, stages[ib].name
            )
        } else if ia == ib {
            format!(
                "outputs `{pa}` and `{pb}` of stage `{}` overlap",
                stages[ia].name
            )
        } else {
            format!(
                "outputs overlap: `{pa}` of stage `{}` and `{pb}` of stage `{}`",
                stages[ia].name, stages[ib].name
            )
        };
        cx.error(stages[ib].pos, what).hint =
            Some("every output belongs to exactly one stage".into());
    }
    let mut upstream_all = Vec::with_capacity(stages.len());
    for s in stages.iter() {
        // A params file is an input too, as in DVC: its writer comes first.
        let from_params: Vec<usize> = s
            .param_refs
            .iter()
            .flat_map(|r| producers(&r.path))
            .map(|(j, _)| j)
            .collect();
        let mut up: Vec<usize> = s
            .deps
            .iter()
            .flat_map(|d| producers(d))
            .map(|(j, _)| j)
            .chain(from_params.iter().copied())
            .collect();
        up.sort_unstable();
        up.dedup();
        upstream_all.push((up, !from_params.is_empty()));
    }
    for (i, (up, from_params)) in upstream_all.into_iter().enumerate() {
        stages[i].params_from_outputs = from_params;
        if up.contains(&i) {
            let name = stages[i].name.clone();
            cx.error(
                stages[i].pos,
                format!("stage `{name}` depends on its own output"),
            )
            .causes
            .push(format!("cycle: {name} -> {name}"));
        }
        stages[i].upstream = up;
    }
}

/// The stages producing `path`, each with the output it produces it by: the output equal to
/// it, the outputs that are folders above it, and the outputs inside it. Borrowed, not copied:
/// this runs for every dep of every stage.
fn producers<'a>(owners: &BTreeMap<&'a str, Vec<usize>>, path: &'a str) -> Vec<(usize, &'a str)> {
    let mut found = Vec::new();
    if let Some(v) = owners.get(path) {
        found.extend(v.iter().map(|&i| (i, path)));
    }
    // Folders above `path`.
    let mut cut = path.len();
    while let Some(pos) = path[..cut].rfind('/') {
        let parent = &path[..pos];
        if let Some(v) = owners.get(parent) {
            found.extend(v.iter().map(|&i| (i, parent)));
        }
        cut = pos;
    }
    // Paths inside `path` (when it is a folder): keys starting with `path/`.
    let prefix = format!("{path}/");
    for (k, v) in owners.range::<str, _>((Bound::Excluded(prefix.as_str()), Bound::Unbounded)) {
        if !k.starts_with(&prefix) {
            break;
        }
        found.extend(v.iter().map(|&i| (i, *k)));
    }
    found
}

/// Kahn's algorithm, taking ready stages in file order so the order is stable; reports a cycle
/// as `a -> b -> a`.
pub(super) fn topo_order(cx: &mut Cx, stages: &[Stage]) -> Vec<usize> {
    let n = stages.len();
    let mut indegree: Vec<usize> = stages.iter().map(|s| s.upstream.len()).collect();
    let mut downstream = vec![Vec::new(); n];
    for (i, s) in stages.iter().enumerate() {
        for &u in &s.upstream {
            downstream[u].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &downstream[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() < n {
        let cycle = find_cycle(stages, &indegree);
        let names: Vec<&str> = cycle.iter().map(|&i| stages[i].name.as_str()).collect();
        let first = cycle[0];
        cx.error(stages[first].pos, "the stages form a cycle".into())
            .causes
            .push(format!("cycle: {}", names.join(" -> ")));
    }
    order
}

/// Walks upstream links among the stages left with unmet dependencies until one repeats.
fn find_cycle(stages: &[Stage], indegree: &[usize]) -> Vec<usize> {
    let start = (0..stages.len())
        .find(|&i| indegree[i] > 0)
        .unwrap_or_default();
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = stages[cur]
            .upstream
            .iter()
            .copied()
            .find(|&u| indegree[u] > 0)
            .unwrap_or(start);
        if let Some(at) = path.iter().position(|&p| p == next) {
            // Show the cycle in the direction data flows: producer -> consumer.
            let mut cycle: Vec<usize> = path[at..].to_vec();
            cycle.reverse();
            cycle.push(cycle[0]);
            return cycle;
        }
        path.push(next);
        cur = next;
    }
}

pub(super) fn reorder(stages: Vec<Stage>, order: &[usize]) -> Vec<Stage> {
    let mut new_index = vec![0; stages.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut slots: Vec<Option<Stage>> = stages.into_iter().map(Some).collect();
    order
        .iter()
        .map(|&old| {
            let mut s = slots[old]
                .take()
                .expect("each stage appears once in the order");
            s.upstream = s.upstream.iter().map(|&u| new_index[u]).collect();
            s.upstream.sort_unstable();
            s
        })
        .collect()
}
