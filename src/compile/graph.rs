//! The task graph: a petgraph DAG over the manifest's tasks, the per-symbol reference closes and
//! the near-ATM selections, with phase `depends-on` edges.
//!
//! Dependencies between phases are per symbol and go through one barrier node per
//! (phase, symbol): a phase P that depends on Q gets `Q's tasks of s -> barrier(Q, s) -> P's
//! tasks of s`, so the edge count grows with tasks(Q) + tasks(P), not their product.

use super::manifest::Manifest;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::BTreeMap;

/// A node of the task graph. Indices point into the manifest's lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphNode {
    /// `manifest.tasks[i]`.
    Task(usize),
    /// The reference close of `manifest.symbols[i]` (for near-ATM phases).
    ReferenceClose(usize),
    /// `manifest.selections[i]`: stands for the tasks the selection expands to at run time.
    Selection(usize),
    /// Done when every task (or selection) of `manifest.phases[phase]` for
    /// `manifest.symbols[symbol]` is done.
    Barrier {
        /// Index into `manifest.phases`.
        phase: usize,
        /// Index into `manifest.symbols`.
        symbol: usize,
    },
}

/// The compiled DAG.
#[derive(Debug, Clone)]
pub struct TaskGraph {
    /// The graph; an edge `a -> b` means `a` must finish before `b` starts.
    pub graph: DiGraph<GraphNode, ()>,
    /// Node of each manifest task, by task index.
    pub task_nodes: Vec<NodeIndex>,
    /// Node of each selection, by selection index.
    pub selection_nodes: Vec<NodeIndex>,
}

/// A dependency cycle, members named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle in the task graph: {}", .0.join(" -> "))]
pub struct CycleError(pub Vec<String>);

impl TaskGraph {
    /// Build the graph of `m` and check that it is acyclic.
    pub fn build(m: &Manifest) -> Result<TaskGraph, CycleError> {
        let mut g: DiGraph<GraphNode, ()> = DiGraph::with_capacity(
            m.tasks.len() + 2 * m.selections.len() + m.symbols.len(),
            m.tasks.len() * 2,
        );
        let sym_index: BTreeMap<&str, usize> = m
            .symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.symbol.as_str(), i))
            .collect();
        let phase_index: BTreeMap<&str, usize> = m
            .phases
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();

        // Work nodes per (phase, symbol).
        let mut work: BTreeMap<(usize, usize), Vec<NodeIndex>> = BTreeMap::new();
        let mut task_nodes = Vec::with_capacity(m.tasks.len());
        for (i, t) in m.tasks.iter().enumerate() {
            let n = g.add_node(GraphNode::Task(i));
            task_nodes.push(n);
            if let (Some(&p), Some(&s)) = (phase_index.get(&*t.phase), sym_index.get(&*t.symbol)) {
                work.entry((p, s)).or_default().push(n);
            }
        }
        let mut ref_nodes: BTreeMap<usize, NodeIndex> = BTreeMap::new();
        let mut selection_nodes = Vec::with_capacity(m.selections.len());
        for (i, sel) in m.selections.iter().enumerate() {
            let n = g.add_node(GraphNode::Selection(i));
            selection_nodes.push(n);
            if let (Some(&p), Some(&s)) = (
                phase_index.get(sel.phase.as_str()),
                sym_index.get(sel.symbol.as_str()),
            ) {
                work.entry((p, s)).or_default().push(n);
                let r = *ref_nodes
                    .entry(s)
                    .or_insert_with(|| g.add_node(GraphNode::ReferenceClose(s)));
                g.add_edge(r, n, ());
            }
        }

        // Barriers: for each phase P, each dependency Q, each symbol.
        for (p, phase) in m.phases.iter().enumerate() {
            for dep in &phase.depends_on {
                let Some(&q) = phase_index.get(dep.as_str()) else {
                    continue;
                };
                for s in 0..m.symbols.len() {
                    let Some(after) = work.get(&(p, s)) else {
                        continue;
                    };
                    let after = after.clone();
                    let barrier = g.add_node(GraphNode::Barrier {
                        phase: q,
                        symbol: s,
                    });
                    if let Some(before) = work.get(&(q, s)) {
                        for b in before {
                            g.add_edge(*b, barrier, ());
                        }
                    }
                    for a in after {
                        g.add_edge(barrier, a, ());
                    }
                }
            }
        }

        if let Err(cycle) = petgraph::algo::toposort(&g, None) {
            let names = petgraph::algo::tarjan_scc(&g)
                .into_iter()
                .find(|c| c.contains(&cycle.node_id()))
                .unwrap_or_default()
                .into_iter()
                .map(|n| describe(m, &g[n]))
                .collect();
            return Err(CycleError(names));
        }
        Ok(TaskGraph {
            graph: g,
            task_nodes,
            selection_nodes,
        })
    }

    /// Nodes with no unfinished predecessor at the start: where the executor begins.
    pub fn roots(&self) -> Vec<NodeIndex> {
        self.graph
            .node_indices()
            .filter(|n| {
                self.graph
                    .neighbors_directed(*n, petgraph::Direction::Incoming)
                    .next()
                    .is_none()
            })
            .collect()
    }

    /// Direct successors of `n` (what may become ready when `n` finishes).
    pub fn successors(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph
            .neighbors_directed(n, petgraph::Direction::Outgoing)
    }

    /// Number of direct predecessors of `n` (for a ready-count scheduler).
    pub fn in_degree(&self, n: NodeIndex) -> usize {
        self.graph
            .neighbors_directed(n, petgraph::Direction::Incoming)
            .count()
    }
}

/// A node's name for messages.
pub fn describe(m: &Manifest, n: &GraphNode) -> String {
    match n {
        GraphNode::Task(i) => m
            .tasks
            .get(*i)
            .map(|t| {
                format!(
                    "task {} ({} {} {})",
                    t.id, t.phase, t.symbol, t.contract.con_id
                )
            })
            .unwrap_or_else(|| format!("task #{i}")),
        GraphNode::ReferenceClose(s) => format!(
            "reference close {}",
            m.symbols.get(*s).map(|x| x.symbol.as_str()).unwrap_or("?")
        ),
        GraphNode::Selection(i) => m
            .selections
            .get(*i)
            .map(|x| format!("selection {} {}", x.phase, x.symbol))
            .unwrap_or_else(|| format!("selection #{i}")),
        GraphNode::Barrier { phase, symbol } => format!(
            "barrier {} {}",
            m.phases.get(*phase).map(|x| x.name.as_str()).unwrap_or("?"),
            m.symbols
                .get(*symbol)
                .map(|x| x.symbol.as_str())
                .unwrap_or("?")
        ),
    }
}
