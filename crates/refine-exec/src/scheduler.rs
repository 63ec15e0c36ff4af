//! The build's bookkeeping, without any I/O: which nodes wait on dependencies, which are
//! ready, which wait for a worker, which run, and what a finished node releases (after
//! Cargo's `DependencyQueue` and `DrainState`).
//!
//! A node is *waiting* until every dependency inside the build has succeeded, then *ready*.
//! [`Scheduler::start_next`] hands a ready node out at once (the caller looks its key up;
//! a cached node finishes without a worker). A node that needs a worker is
//! [queued](Scheduler::queue), and [`Scheduler::launch_next`] gives the queued node with the
//! longest remaining chain of work (its own cost plus the costliest chain of dependents), so
//! that the critical path starts first; the order the nodes were given in breaks ties.
//!
//! A node that fails (or is skipped) releases nothing: everything downstream of it never
//! becomes ready. Without `keep_going` the first failure stops the build: nothing more is
//! handed out or launched, the running nodes are left to finish. [`Scheduler::cancel`]
//! stops it the same way.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A node of the build (a target's id).
pub type NodeId = usize;

/// One node as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub id: NodeId,
    /// Dependencies; those outside the build count as done, repeats count once.
    pub deps: Vec<NodeId>,
    /// The node's own weight on the critical path (an estimate of its time).
    pub cost: u64,
}

/// How a node that was handed out ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its artifact exists: dependents may go.
    Succeeded,
    /// It failed: dependents never run, and without `keep_going` the build stops.
    Failed,
    /// It did not run for a reason of its own: dependents never run, the build goes on.
    Skipped,
}

/// Why a node was never handed out (or, queued, never launched).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unstarted {
    /// This dependency did not succeed.
    Blocked { by: NodeId },
    /// Its dependencies succeeded, but the build stopped before it ran.
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting {
        left: usize,
    },
    Ready,
    /// Handed out, and not queued or finished since.
    Running,
    /// Waiting for a worker.
    Queued,
    Done(Outcome),
}

#[derive(Debug)]
struct Node {
    deps: Vec<usize>,
    dependents: Vec<usize>,
    priority: u64,
    state: State,
}

/// The state of one build's graph: see the module documentation.
#[derive(Debug)]
pub struct Scheduler {
    /// Index of each node id in `nodes` (the order given, which breaks priority ties).
    index: HashMap<NodeId, usize>,
    ids: Vec<NodeId>,
    nodes: Vec<Node>,
    /// Ready nodes, and queued ones: highest priority first, then the earliest given.
    ready: BinaryHeap<(u64, Reverse<usize>)>,
    queued: BinaryHeap<(u64, Reverse<usize>)>,
    running: usize,
    keep_going: bool,
    stopped: bool,
}

impl Scheduler {
    /// A scheduler over `nodes`; the nodes with no dependency left are ready at once.
    pub fn new(nodes: Vec<NodeSpec>, keep_going: bool) -> Scheduler {
        let index: HashMap<NodeId, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        let mut deps: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                let mut d: Vec<usize> = n
                    .deps
                    .iter()
                    .filter_map(|d| index.get(d).copied())
                    .collect();
                d.sort_unstable();
                d.dedup();
                d
            })
            .collect();
        let mut dependents = vec![Vec::new(); nodes.len()];
        for (i, ds) in deps.iter_mut().enumerate() {
            for &d in ds.iter() {
                dependents[d].push(i);
            }
        }
        let costs: Vec<u64> = nodes.iter().map(|n| n.cost).collect();
        let priority = longest_chains(&dependents, &costs);
        let mut sched = Scheduler {
            index,
            ids: nodes.iter().map(|n| n.id).collect(),
            nodes: deps
                .into_iter()
                .zip(dependents)
                .zip(priority)
                .map(|((deps, dependents), priority)| Node {
                    state: State::Waiting { left: deps.len() },
                    deps,
                    dependents,
                    priority,
                })
                .collect(),
            ready: BinaryHeap::new(),
            queued: BinaryHeap::new(),
            running: 0,
            keep_going,
            stopped: false,
        };
        for i in 0..sched.nodes.len() {
            if sched.nodes[i].state == (State::Waiting { left: 0 }) {
                sched.make_ready(i);
            }
        }
        sched
    }

    fn make_ready(&mut self, i: usize) {
        self.nodes[i].state = State::Ready;
        self.ready.push((self.nodes[i].priority, Reverse(i)));
    }

    /// The next ready node, now counted as running; `None` when nothing is ready or the
    /// build has stopped.
    pub fn start_next(&mut self) -> Option<NodeId> {
        if self.stopped {
            return None;
        }
        let (_, Reverse(i)) = self.ready.pop()?;
        self.nodes[i].state = State::Running;
        self.running += 1;
        Some(self.ids[i])
    }

    /// A running node needs a worker: it waits for [`Scheduler::launch_next`]. A node that
    /// is not running is ignored.
    pub fn queue(&mut self, id: NodeId) {
        let Some(&i) = self.index.get(&id) else {
            return;
        };
        if self.nodes[i].state != State::Running {
            return;
        }
        self.nodes[i].state = State::Queued;
        self.running -= 1;
        self.queued.push((self.nodes[i].priority, Reverse(i)));
    }

    /// The queued node to give the free worker, running again; `None` when nothing is
    /// queued or the build has stopped.
    pub fn launch_next(&mut self) -> Option<NodeId> {
        if self.stopped {
            return None;
        }
        let (_, Reverse(i)) = self.queued.pop()?;
        self.nodes[i].state = State::Running;
        self.running += 1;
        Some(self.ids[i])
    }

    /// Records how a running node ended; a success makes each dependent whose last
    /// dependency it was ready. A node that is not running is ignored.
    pub fn finish(&mut self, id: NodeId, outcome: Outcome) {
        let Some(&i) = self.index.get(&id) else {
            return;
        };
        if self.nodes[i].state != State::Running {
            return;
        }
        self.nodes[i].state = State::Done(outcome);
        self.running -= 1;
        match outcome {
            Outcome::Succeeded => {
                for d in self.nodes[i].dependents.clone() {
                    if let State::Waiting { left } = &mut self.nodes[d].state {
                        *left -= 1;
                        if *left == 0 {
                            self.make_ready(d);
                        }
                    }
                }
            }
            Outcome::Failed if !self.keep_going => self.stopped = true,
            Outcome::Failed | Outcome::Skipped => {}
        }
    }

    /// Stops the build: nothing more is handed out; running nodes still report.
    pub fn cancel(&mut self) {
        self.stopped = true;
    }

    /// Whether the build has stopped (a failure without `keep_going`, or a cancel).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Nodes handed out or launched, and not queued or finished since.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Whether the build is over: nothing runs, and nothing more will be handed out or
    /// launched.
    pub fn is_finished(&self) -> bool {
        self.running == 0 && (self.stopped || self.ready.is_empty() && self.queued.is_empty())
    }

    /// The node's priority: its cost plus the costliest chain of dependents after it.
    pub fn priority(&self, id: NodeId) -> Option<u64> {
        self.index.get(&id).map(|&i| self.nodes[i].priority)
    }

    /// Every node never handed out or never launched, in the order given, with the reason.
    pub fn unstarted(&self) -> Vec<(NodeId, Unstarted)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                matches!(
                    n.state,
                    State::Waiting { .. } | State::Ready | State::Queued
                )
            })
            .map(|(i, n)| {
                let blocker = n
                    .deps
                    .iter()
                    .find(|&&d| self.nodes[d].state != State::Done(Outcome::Succeeded));
                let why = match blocker {
                    Some(&d) => Unstarted::Blocked { by: self.ids[d] },
                    None => Unstarted::Stopped,
                };
                (self.ids[i], why)
            })
            .collect()
    }
}

/// For each node, its cost plus the largest total over the chains of nodes reachable through
/// `next` (dependents, or dependencies); nodes on a cycle count their own cost only.
fn longest_chains(next: &[Vec<usize>], costs: &[u64]) -> Vec<u64> {
    // Kahn's order from the ends of the chains back to their starts.
    let mut pending: Vec<usize> = next.iter().map(Vec::len).collect();
    let mut prev = vec![Vec::new(); next.len()];
    for (i, ns) in next.iter().enumerate() {
        for &n in ns {
            prev[n].push(i);
        }
    }
    let mut total: Vec<u64> = costs.to_vec();
    let mut queue: Vec<usize> = (0..next.len()).filter(|&i| pending[i] == 0).collect();
    while let Some(i) = queue.pop() {
        let after = next[i].iter().map(|&n| total[n]).max().unwrap_or(0);
        total[i] = costs[i].saturating_add(after);
        for &p in &prev[i] {
            pending[p] -= 1;
            if pending[p] == 0 {
                queue.push(p);
            }
        }
    }
    total
}

/// The chain of dependencies whose summed `weight` is largest (the build's critical path,
/// with each node's measured time), from its first node to its last, and that sum. Nodes that
/// weigh nothing upstream of the chain (cached ones) are not part of it: a build that ran
/// nothing has no critical path.
pub fn critical_path(nodes: &[NodeSpec], weight: impl Fn(NodeId) -> f64) -> (Vec<NodeId>, f64) {
    let index: HashMap<NodeId, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let deps: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            n.deps
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    // Seconds do not sum exactly as floats; microseconds as integers do.
    let micros: Vec<u64> = nodes
        .iter()
        .map(|n| (weight(n.id).max(0.0) * 1e6).round() as u64)
        .collect();
    let total = longest_chains(&deps, &micros);
    let Some(mut at) = (0..nodes.len())
        .max_by_key(|&i| (total[i], Reverse(i)))
        .filter(|&i| total[i] > 0)
    else {
        return (Vec::new(), 0.0);
    };
    let mut path = vec![nodes[at].id];
    let mut seconds = 0.0;
    loop {
        seconds += weight(nodes[at].id).max(0.0);
        let Some(&prev) = deps[at]
            .iter()
            .max_by_key(|&&d| (total[d], Reverse(d)))
            .filter(|&&d| total[d] > 0)
        else {
            break;
        };
        path.push(nodes[prev].id);
        at = prev;
    }
    path.reverse();
    (path, seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: NodeId, deps: &[NodeId]) -> NodeSpec {
        NodeSpec {
            id,
            deps: deps.to_vec(),
            cost: 1,
        }
    }

    /// Runs the scheduler to the end, one node at a time, failing the nodes in `fail`.
    fn drain(sched: &mut Scheduler, fail: &[NodeId]) -> Vec<NodeId> {
        let mut order = Vec::new();
        while let Some(id) = sched.start_next() {
            order.push(id);
            let outcome = if fail.contains(&id) {
                Outcome::Failed
            } else {
                Outcome::Succeeded
            };
            sched.finish(id, outcome);
        }
        order
    }

    #[test]
    fn a_node_starts_only_after_its_dependencies() {
        // 3 -> 2 -> 1 (3 depends on 2, which depends on 1), given in reverse.
        let mut s = Scheduler::new(vec![node(3, &[2]), node(2, &[1]), node(1, &[])], false);
        assert_eq!(s.start_next(), Some(1));
        assert_eq!(s.start_next(), None, "2 waits for 1");
        assert!(!s.is_finished(), "1 is running");
        s.finish(1, Outcome::Succeeded);
        assert_eq!(s.start_next(), Some(2));
        s.finish(2, Outcome::Succeeded);
        assert_eq!(s.start_next(), Some(3));
        s.finish(3, Outcome::Succeeded);
        assert!(s.is_finished());
        assert!(s.unstarted().is_empty());
    }

    #[test]
    fn a_diamond_releases_its_bottom_once_both_sides_are_done() {
        //   1
        //  2 3
        //   4
        let mut s = Scheduler::new(
            vec![node(1, &[]), node(2, &[1]), node(3, &[1]), node(4, &[2, 3])],
            false,
        );
        assert_eq!(s.start_next(), Some(1));
        s.finish(1, Outcome::Succeeded);
        let (a, b) = (s.start_next().unwrap(), s.start_next().unwrap());
        assert_eq!((a, b), (2, 3), "equal priorities: the order given");
        assert_eq!(s.running(), 2);
        s.finish(a, Outcome::Succeeded);
        assert_eq!(s.start_next(), None, "4 still waits for 3");
        s.finish(b, Outcome::Succeeded);
        assert_eq!(s.start_next(), Some(4));
        s.finish(4, Outcome::Succeeded);
        assert!(s.is_finished());
    }

    #[test]
    fn a_dependency_listed_twice_is_waited_for_once() {
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[1, 1])], false);
        assert_eq!(drain(&mut s, &[]), [1, 2]);
        assert!(s.is_finished());
    }

    #[test]
    fn dependencies_outside_the_build_count_as_done() {
        let mut s = Scheduler::new(vec![node(5, &[99])], false);
        assert_eq!(drain(&mut s, &[]), [5]);
    }

    #[test]
    fn the_longest_remaining_chain_starts_first() {
        // 10 has a chain of three after it (10 -> 11 -> 12); 1 and 2 stand alone and were
        // given first.
        let mut s = Scheduler::new(
            vec![
                node(1, &[]),
                node(2, &[]),
                node(10, &[]),
                node(11, &[10]),
                node(12, &[11]),
            ],
            false,
        );
        assert_eq!(s.priority(10), Some(3));
        assert_eq!(s.priority(11), Some(2));
        assert_eq!(s.priority(1), Some(1));
        assert_eq!(s.start_next(), Some(10));
        assert_eq!(s.start_next(), Some(1));
        assert_eq!(s.start_next(), Some(2));
    }

    #[test]
    fn queued_nodes_launch_longest_chain_first() {
        let mut s = Scheduler::new(
            vec![
                node(1, &[]),
                node(2, &[]),
                node(10, &[]),
                node(11, &[10]),
                node(12, &[11]),
            ],
            false,
        );
        // Every ready node is handed out at once (its key looked up), and needs a worker.
        let mut handed = Vec::new();
        while let Some(id) = s.start_next() {
            handed.push(id);
            s.queue(id);
        }
        assert_eq!(handed, [10, 1, 2]);
        assert_eq!(s.running(), 0);
        assert!(!s.is_finished(), "three wait for a worker");
        // One worker: the head of the longest chain goes first.
        assert_eq!(s.launch_next(), Some(10));
        assert_eq!(s.launch_next(), Some(1));
        s.finish(10, Outcome::Succeeded);
        // 11 is ready now; handed out and queued, it outranks 2 (chain of two against one).
        assert_eq!(s.start_next(), Some(11));
        s.queue(11);
        assert_eq!(s.launch_next(), Some(11));
        assert_eq!(s.launch_next(), Some(2));
        assert_eq!(s.launch_next(), None);
    }

    #[test]
    fn a_node_finished_without_a_worker_releases_its_dependents() {
        // 1 is cached: handed out and finished at once; 2 then needs a worker.
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[1])], false);
        assert_eq!(s.start_next(), Some(1));
        s.finish(1, Outcome::Succeeded);
        assert_eq!(s.start_next(), Some(2));
        s.queue(2);
        assert_eq!(s.launch_next(), Some(2));
        s.finish(2, Outcome::Succeeded);
        assert!(s.is_finished());
    }

    #[test]
    fn a_stop_leaves_queued_nodes_unlaunched() {
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[]), node(3, &[])], false);
        for _ in 0..3 {
            let id = s.start_next().unwrap();
            s.queue(id);
        }
        assert_eq!(s.launch_next(), Some(1));
        s.finish(1, Outcome::Failed);
        assert_eq!(s.launch_next(), None, "the failure stopped the build");
        assert!(s.is_finished());
        assert_eq!(
            s.unstarted(),
            [(2, Unstarted::Stopped), (3, Unstarted::Stopped)]
        );
        // A cancel does the same.
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[])], true);
        let id = s.start_next().unwrap();
        s.queue(id);
        s.cancel();
        assert_eq!(s.launch_next(), None);
        assert_eq!(s.start_next(), None);
        assert!(s.is_finished());
        assert_eq!(s.unstarted().len(), 2);
    }

    #[test]
    fn costs_weigh_on_the_critical_path() {
        // One slow node (cost 100) against a chain of three quick ones.
        let mut s = Scheduler::new(
            vec![
                node(1, &[]),
                node(2, &[1]),
                node(3, &[2]),
                NodeSpec {
                    id: 4,
                    deps: vec![],
                    cost: 100,
                },
            ],
            false,
        );
        assert_eq!(s.start_next(), Some(4));
        assert_eq!(s.start_next(), Some(1));
    }

    #[test]
    fn a_chain_priority_takes_the_costliest_branch_not_the_sum() {
        // 1 -> {2 -> 3, 4}: the longest chain after 1 is 2 -> 3.
        let s = Scheduler::new(
            vec![node(1, &[]), node(2, &[1]), node(3, &[2]), node(4, &[1])],
            false,
        );
        assert_eq!(s.priority(1), Some(3));
    }

    #[test]
    fn without_keep_going_a_failure_stops_launching() {
        // 1 fails; 2 is ready and independent, 3 depends on 1.
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[]), node(3, &[1])], false);
        assert_eq!(s.start_next(), Some(1));
        s.finish(1, Outcome::Failed);
        assert!(s.is_stopped());
        assert_eq!(s.start_next(), None, "nothing more starts");
        assert!(s.is_finished());
        assert_eq!(
            s.unstarted(),
            [(2, Unstarted::Stopped), (3, Unstarted::Blocked { by: 1 })]
        );
    }

    #[test]
    fn a_failure_lets_the_running_nodes_report() {
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[]), node(3, &[2])], false);
        assert_eq!(s.start_next(), Some(2), "the longer chain first");
        assert_eq!(s.start_next(), Some(1));
        s.finish(1, Outcome::Failed);
        assert!(!s.is_finished(), "2 still runs");
        s.finish(2, Outcome::Succeeded);
        assert!(s.is_finished());
        assert_eq!(s.start_next(), None, "3 is ready but the build stopped");
        assert_eq!(s.unstarted(), [(3, Unstarted::Stopped)]);
    }

    #[test]
    fn keep_going_skips_only_what_is_downstream_of_a_failure() {
        // 1 fails; 2 and 3 depend on it (3 through 2); 4 and 5 do not.
        let mut s = Scheduler::new(
            vec![
                node(1, &[]),
                node(2, &[1]),
                node(3, &[2]),
                node(4, &[]),
                node(5, &[4]),
            ],
            true,
        );
        let order = drain(&mut s, &[1]);
        assert_eq!(order, [1, 4, 5]);
        assert!(!s.is_stopped());
        assert!(s.is_finished());
        assert_eq!(
            s.unstarted(),
            [
                (2, Unstarted::Blocked { by: 1 }),
                (3, Unstarted::Blocked { by: 2 })
            ]
        );
    }

    #[test]
    fn a_skipped_node_blocks_its_dependents_but_not_the_build() {
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[1]), node(3, &[])], false);
        assert_eq!(s.start_next(), Some(1));
        s.finish(1, Outcome::Skipped);
        assert!(!s.is_stopped());
        assert_eq!(s.start_next(), Some(3));
        s.finish(3, Outcome::Succeeded);
        assert!(s.is_finished());
        assert_eq!(s.unstarted(), [(2, Unstarted::Blocked { by: 1 })]);
    }

    #[test]
    fn cancel_stops_handing_out_and_waits_for_the_running() {
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[]), node(3, &[1])], true);
        assert_eq!(s.start_next(), Some(1));
        s.cancel();
        assert_eq!(s.start_next(), None);
        assert!(!s.is_finished(), "1 is still running");
        s.finish(1, Outcome::Succeeded);
        assert_eq!(s.start_next(), None, "3 became ready after the cancel");
        assert!(s.is_finished());
        assert_eq!(
            s.unstarted(),
            [(2, Unstarted::Stopped), (3, Unstarted::Stopped)]
        );
    }

    #[test]
    fn finishing_a_node_twice_or_one_never_started_changes_nothing() {
        let mut s = Scheduler::new(vec![node(1, &[]), node(2, &[1])], false);
        s.finish(2, Outcome::Succeeded);
        s.finish(42, Outcome::Failed);
        assert!(!s.is_stopped());
        assert_eq!(s.start_next(), Some(1));
        s.finish(1, Outcome::Succeeded);
        s.finish(1, Outcome::Failed);
        assert!(!s.is_stopped());
        assert_eq!(s.start_next(), Some(2));
    }

    #[test]
    fn a_cycle_never_starts_and_is_reported_blocked() {
        let mut s = Scheduler::new(vec![node(1, &[2]), node(2, &[1]), node(3, &[])], false);
        assert_eq!(drain(&mut s, &[]), [3]);
        assert!(s.is_finished());
        assert_eq!(
            s.unstarted(),
            [
                (1, Unstarted::Blocked { by: 2 }),
                (2, Unstarted::Blocked { by: 1 })
            ]
        );
    }

    #[test]
    fn a_wide_graph_runs_every_node_once_in_dependency_order() {
        // 200 nodes in layers of ten, each depending on the one ten before it.
        let nodes: Vec<NodeSpec> = (0..200)
            .map(|i| NodeSpec {
                id: i,
                deps: if i >= 10 { vec![i - 10] } else { Vec::new() },
                cost: 1,
            })
            .collect();
        let mut s = Scheduler::new(nodes, false);
        let mut order = Vec::new();
        // Three at a time, finishing the oldest first.
        let mut running = std::collections::VecDeque::new();
        loop {
            while running.len() < 3
                && let Some(id) = s.start_next()
            {
                running.push_back(id);
            }
            let Some(id) = running.pop_front() else { break };
            order.push(id);
            s.finish(id, Outcome::Succeeded);
        }
        assert!(s.is_finished());
        assert_eq!(order.len(), 200);
        let at: HashMap<NodeId, usize> = order.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        assert_eq!(at.len(), 200, "each node once");
        for i in 10..200 {
            assert!(at[&(i - 10)] < at[&i], "{} ran after {i}", i - 10);
        }
    }

    #[test]
    fn the_critical_path_follows_measured_time() {
        // 1 -> 2 -> 4 and 1 -> 3 -> 4; 3 took longer than 2.
        let nodes = vec![node(1, &[]), node(2, &[1]), node(3, &[1]), node(4, &[2, 3])];
        let secs = |id: NodeId| [0.0, 1.0, 0.5, 2.0, 0.25][id];
        let (path, total) = critical_path(&nodes, secs);
        assert_eq!(path, [1, 3, 4]);
        assert!((total - 3.25).abs() < 1e-9, "{total}");
        assert_eq!(critical_path(&[], secs), (Vec::new(), 0.0));
    }

    #[test]
    fn cached_nodes_upstream_are_not_on_the_critical_path() {
        // 1 -> 2 -> 3, where 1 and 2 were cached (no time) and 3 ran.
        let nodes = vec![node(1, &[]), node(2, &[1]), node(3, &[2])];
        let ran = |id: NodeId| if id == 3 { 5.0 } else { 0.0 };
        assert_eq!(critical_path(&nodes, ran), (vec![3], 5.0));
        assert_eq!(critical_path(&nodes, |_| 0.0), (Vec::new(), 0.0));
    }
}
