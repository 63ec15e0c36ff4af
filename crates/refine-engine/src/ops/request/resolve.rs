//! Resolving one platform and Python version of a request: the closure with uv for the
//! target, what each package is taken as, then every sdist's build requirements pinned to
//! wheels — the request's own built wheels first — in rounds, several uv runs at once (their
//! time is mostly the index's), each distinct set of build requirements resolved once. The
//! lock being replaced says which questions the rounds will most likely ask: they are asked
//! while the closure is resolved, and a round then finds its answers ready. A question is
//! the same question whoever asks it first, so the lock written does not depend on the lock
//! it replaces.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use refine_fetch::PipConfig;
use refine_rules::rules::request::{
    LockedFile, LockedPackage, Request, Resolution, Strategy, Take,
};
use refine_rules::rules::{Pinned, Sha256, Workspace, normalize};
use refine_store::LocalStore;
use uv_pep440::Version;

use super::probe::Asked;
use super::pylock::{self, PyLock};
use super::uv::{Input, Uv};
use super::{at_request, sdist};
use crate::ops::OpError;

/// How many questions are in flight at once (uv itself runs at most two at a time, see
/// [`Uv`]): the others fetch and read their sdists meanwhile.
const WIDTH: usize = 6;

/// Runs `f` over `items`, up to [`WIDTH`] at a time, keeping the order.
pub(super) fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(WIDTH) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|i| s.spawn(|| f(i))).collect();
            for h in handles {
                match h.join() {
                    Ok(r) => out.push(r),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }
    out
}

/// Whether build requirement `name` `version` of `packages[at]` is a wheel the request
/// builds: another of its packages, at that version, taken from its sdist. Never the package
/// itself, which would wait on its own build.
fn built_here(packages: &[LockedPackage], at: usize, name: &str, version: &str) -> bool {
    name != packages[at].name
        && packages
            .iter()
            .any(|o| o.name == name && o.version == version && o.take == Take::Sdist)
}

/// A set of build requirements, with the versions the request builds itself.
type MemoKey = (String, Vec<String>, Vec<String>);

/// One sdist's build closure, split.
struct Split {
    /// Wheels pinned from the index.
    pins: Vec<Pinned>,
    /// Wheels the request builds (`NAME`, `VERSION`).
    built: Vec<(String, String)>,
    /// For those of `built` that the index also has a wheel of for the platform, that wheel:
    /// what a cycle of builds is broken with.
    index_wheels: Vec<Pinned>,
}

/// The index's wheels of the build requirements the request builds, by the position of the
/// package whose build needs them and their name.
type IndexWheels = HashMap<(usize, String), Pinned>;

pub(super) struct Resolver<'a> {
    pub ws: &'a Workspace,
    pub request: &'a Request,
    pub store: &'a LocalStore,
    pub pip: &'a PipConfig,
    pub uv: &'a Uv,
    pub work: &'a Path,
    /// Build-requirement resolutions by platform and Python version, requirements and the
    /// request's versions; one being asked is waited for, not asked again.
    pub memo: Mutex<HashMap<MemoKey, Arc<OnceLock<Answer>>>>,
    /// Build systems read, by sdist sha256: the questions asked ahead and the rounds read the
    /// same sdists, and reading one means decompressing it up to its `pyproject.toml`.
    pub systems: Mutex<HashMap<String, Arc<sdist::BuildSystem>>>,
    /// What the probes of earlier passes found each build's backend asking for beyond its
    /// build system's `requires` ([`super::probe`]).
    pub asked: BTreeMap<Asked, Vec<String>>,
}

/// One build-requirement resolution: the closure, or uv's message.
type Answer = Arc<Result<PyLock, String>>;

/// What one sdist's build asks uv: its backend, its build requirements and the request's
/// versions to prefer.
struct Question {
    backend: String,
    requires: Vec<String>,
    mine: Vec<String>,
}

/// One resolution being pinned.
struct Target<'a> {
    platform: &'a str,
    /// uv's `--python-platform`.
    uv_platform: &'a str,
    python: String,
}

impl Target<'_> {
    fn error(&self, p: &LockedPackage, message: String) -> OpError {
        OpError::BuildRequirements {
            package: p.name.clone(),
            version: p.version.clone(),
            platform: self.platform.to_string(),
            python: self.python.clone(),
            message,
        }
    }
}

impl Resolver<'_> {
    /// What the probes of earlier passes found `package`'s backend asking for on `t`.
    fn asked_of(&self, t: &Target<'_>, package: &str) -> &[String] {
        let asked = (
            t.platform.to_string(),
            t.python.clone(),
            package.to_string(),
        );
        self.asked.get(&asked).map_or(&[], Vec::as_slice)
    }

    /// The closure of the request for `platform` (`uv_platform` for uv) and `python`, each
    /// package taken as the strategy says, every sdist's build requirements pinned.
    /// `previous` is the replaced lock's resolution for the same target, if any: its
    /// questions are asked meanwhile.
    pub fn resolve(
        &self,
        platform: &str,
        uv_platform: &str,
        python: &Version,
        previous: Option<&Resolution>,
    ) -> Result<Resolution, OpError> {
        let t = Target {
            platform,
            uv_platform,
            python: python.to_string(),
        };
        std::thread::scope(|s| {
            if let Some(previous) = previous {
                s.spawn(|| self.ask_ahead(&t, previous));
            }
            self.resolve_now(&t, python)
        })
    }

    fn resolve_now(&self, t: &Target<'_>, python: &Version) -> Result<Resolution, OpError> {
        let platform = t.platform;
        let input = Input::of_request(self.ws, self.request, self.work)?;
        let resolved = self
            .uv
            .compile(&input, t.uv_platform, &t.python, false, self.work)
            .map_err(|message| {
                at_request(
                    self.ws,
                    self.request,
                    "resolution-failed",
                    format!(
                        "Request `{}` cannot be resolved for Python {} on `{platform}`:\n{message}",
                        self.request.name, t.python
                    ),
                    "The resolver's message says which requirement cannot be met; fix the requirements, constraints or `override … version` and lock again".into(),
                )
            })?;
        let mut packages = resolved
            .packages
            .iter()
            .map(|p| self.choose(p, t))
            .collect::<Result<Vec<_>, _>>()?;
        self.pin_build_requirements(t, &mut packages)?;
        Ok(Resolution {
            python: python.clone(),
            platform: platform.to_string(),
            packages,
        })
    }

    /// What a resolved package is taken as: the index's wheel when the strategy allows and
    /// one fits, else its sdist.
    fn choose(&self, p: &pylock::Package, t: &Target<'_>) -> Result<LockedPackage, OpError> {
        let request = self.request;
        let name = normalize(&p.name);
        let wheel = pylock::best_wheel(&p.wheels).map(|w| LockedFile {
            file: w.file.clone(),
            sha256: Sha256(w.sha256.clone()),
        });
        let sdist = p.sdist.as_ref().map(|s| LockedFile {
            file: s.file.clone(),
            sha256: Sha256(s.sha256.clone()),
        });
        let pure = wheel
            .as_ref()
            .is_some_and(|w| w.file.ends_with("-none-any.whl"));
        let forced = request.override_for(&name).is_some_and(|o| o.sdist);
        let take = match (request.strategy, &wheel, &sdist) {
            (Strategy::ReuseWheels, Some(_), _) if !forced => Take::Wheel,
            (_, _, Some(_)) => Take::Sdist,
            (Strategy::BuildAll, Some(_), None) if pure => Take::Wheel,
            _ => {
                return Err(at_request(
                    self.ws,
                    request,
                    "nothing-to-take",
                    format!(
                        "`{name}` {} has no sdist{} for Python {} on `{}`",
                        p.version,
                        if request.strategy == Strategy::ReuseWheels && !forced {
                            " and no wheel"
                        } else {
                            ""
                        },
                        t.python,
                        t.platform
                    ),
                    "Pin another version with `override \"NAME\" { version \"==…\" }`, or take the index's wheel (`strategy \"reuse-wheels\"`, no `take \"sdist\"`)".into(),
                ));
            }
        };
        Ok(LockedPackage {
            name,
            version: p.version.clone(),
            take,
            sdist,
            wheel,
            backend: None,
            asked: Vec::new(),
            build_requires: Vec::new(),
            built_requires: Vec::new(),
            at: request.at,
        })
    }

    /// Resolves `requires` for the target, wheels only, preferring `ours` (the versions the
    /// request builds); then without them; then with sdists allowed (for a build
    /// requirement that has no wheel for the platform). Each distinct question once.
    fn build_closure(&self, t: &Target<'_>, requires: &[String], ours: &[String]) -> Answer {
        let key = (
            format!("{} {}", t.uv_platform, t.python),
            requires.to_vec(),
            ours.to_vec(),
        );
        let cell = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(|| Arc::new(self.ask(t, requires, ours)))
            .clone()
    }

    /// Asks uv: wheels only with the request's versions, then without them, then with
    /// sdists allowed. The wheels-only attempt without the request's versions says best
    /// why none worked.
    fn ask(&self, t: &Target<'_>, requires: &[String], ours: &[String]) -> Result<PyLock, String> {
        let attempts: [(&[String], bool); 3] = [(ours, true), (&[], true), (&[], false)];
        let mut errors = Vec::new();
        for (constraints, only_binary) in attempts {
            let input = match Input::of_lines(requires, constraints, self.work) {
                Ok(i) => i,
                Err(e) => {
                    errors.push(e.to_string());
                    break;
                }
            };
            match self
                .uv
                .compile(&input, t.uv_platform, &t.python, only_binary, self.work)
            {
                Ok(r) => return Ok(r),
                Err(e) => errors.push(e),
            }
        }
        let at = usize::from(errors.len() > 1);
        Err(errors.swap_remove(at))
    }

    /// The question sdist package `p`'s build asks, with `ours` the versions the request
    /// builds. A constraint on a package outside the closure changes nothing, so every sdist
    /// asks with the same constraints (and equal questions are asked once), except one whose
    /// build requires itself: its own version is left free.
    fn question(
        &self,
        t: &Target<'_>,
        p: &LockedPackage,
        sdist: &LockedFile,
        ours: &[(String, String)],
    ) -> Result<Question, OpError> {
        let build = self.build_system(p, sdist)?;
        let mut requires = build.requires.clone();
        if let Some(o) = self.request.override_for(&p.name) {
            requires.extend(o.build_requires.iter().cloned());
        }
        requires.extend(self.asked_of(t, &p.name).iter().cloned());
        let needs_itself = requires
            .iter()
            .filter_map(|r| r.parse::<uv_pep508::Requirement>().ok())
            .any(|r| normalize(r.name.as_ref()) == p.name);
        // Sorted: the rounds and the questions asked ahead list the versions in different
        // orders, and the order means nothing to uv.
        let mut mine: Vec<String> = ours
            .iter()
            .filter(|(n, _)| !needs_itself || *n != p.name)
            .map(|(n, v)| format!("{n}=={v}"))
            .collect();
        mine.sort_unstable();
        Ok(Question {
            backend: build.backend.clone(),
            requires,
            mine,
        })
    }

    /// Sdist package `p`'s build system, read once per sdist (two threads asking at once may
    /// both read it; they read the same bytes, verified by sha256).
    fn build_system(
        &self,
        p: &LockedPackage,
        sdist: &LockedFile,
    ) -> Result<Arc<sdist::BuildSystem>, OpError> {
        let known = self
            .systems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&sdist.sha256.0)
            .cloned();
        if let Some(b) = known {
            return Ok(b);
        }
        let read = Arc::new(sdist::build_system(
            self.store, self.pip, &p.name, &p.version, sdist,
        )?);
        self.systems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sdist.sha256.0.clone(), read.clone());
        Ok(read)
    }

    /// Asks the questions the rounds of [`Self::pin_build_requirements`] asked for
    /// `previous`: its sdists' builds, with the versions of the first round (the packages
    /// the closure holds, so not those only a build needs) and of the last (all of them).
    /// Errors are left to the rounds, which ask again only what they need.
    fn ask_ahead(&self, t: &Target<'_>, previous: &Resolution) {
        for ours in previous_rounds(&previous.packages) {
            let sdists: Vec<&LockedPackage> = previous
                .packages
                .iter()
                .filter(|p| p.take == Take::Sdist)
                .collect();
            parallel(&sdists, |p| {
                if let Some(sdist) = &p.sdist
                    && let Ok(q) = self.question(t, p, sdist, &ours)
                {
                    self.build_closure(t, &q.requires, &q.mine);
                }
            });
        }
    }

    /// Pins the build requirements of every package taken from its sdist: to the index's
    /// wheel for the platform or, for a build requirement the resolution builds itself (or
    /// one with no wheel for the platform, then added to the resolution from its sdist), to
    /// that built wheel. Packages are taken in rounds; a round's questions go to uv at once.
    fn pin_build_requirements(
        &self,
        t: &Target<'_>,
        packages: &mut Vec<LockedPackage>,
    ) -> Result<(), OpError> {
        let mut index_wheels = IndexWheels::new();
        let mut done = 0;
        while done < packages.len() {
            let round: Vec<usize> = (done..packages.len())
                .filter(|&i| packages[i].take == Take::Sdist)
                .collect();
            done = packages.len();
            let ours: Vec<(String, String)> = packages
                .iter()
                .filter(|o| o.take == Take::Sdist)
                .map(|o| (o.name.clone(), o.version.clone()))
                .collect();
            let snapshot: Vec<LockedPackage> = round.iter().map(|&i| packages[i].clone()).collect();
            let answers = parallel(&snapshot, |p| -> Result<_, OpError> {
                let Some(sdist) = &p.sdist else {
                    return Ok(None);
                };
                let q = self.question(t, p, sdist, &ours)?;
                let closure = self.build_closure(t, &q.requires, &q.mine);
                Ok(Some((q.backend, closure)))
            });
            for (&at, answer) in round.iter().zip(answers) {
                let Some((backend, closure)) = answer? else {
                    continue;
                };
                let resolved = match closure.as_ref() {
                    Ok(r) => r,
                    Err(message) => return Err(t.error(&packages[at], message.clone())),
                };
                let split = self.apply(t, packages, at, resolved)?;
                let p = &mut packages[at];
                p.backend = Some(backend);
                p.asked = self.asked_of(t, &p.name).to_vec();
                p.build_requires = split.pins;
                p.built_requires = split.built;
                for w in split.index_wheels {
                    index_wheels.insert((at, normalize(&w.name)), w);
                }
            }
        }
        break_build_cycles(packages, &index_wheels).map_err(|group| {
            let names: Vec<String> = group
                .iter()
                .map(|&i| format!("`{}` {}", packages[i].name, packages[i].version))
                .collect();
            t.error(
                &packages[group[0]],
                format!(
                    "the builds of {} need each other's wheels built here, and the index has no wheel for the platform of any of them to build one with first",
                    names.join(", ")
                ),
            )
        })
    }

    /// Splits one sdist's resolved build closure into pinned wheels and wheels built here
    /// (with the index's wheels of those, where it has some), adding to `packages` what must
    /// be built and is not yet.
    fn apply(
        &self,
        t: &Target<'_>,
        packages: &mut Vec<LockedPackage>,
        at: usize,
        resolved: &PyLock,
    ) -> Result<Split, OpError> {
        let mut pins = Vec::new();
        let mut built = Vec::new();
        let mut index_wheels = Vec::new();
        for b in &resolved.packages {
            let b_name = normalize(&b.name);
            // A package whose build closure holds itself (jupyterlab-pygments builds with
            // jupyterlab, which needs it at run time) builds with the index's wheel of itself:
            // built here, it would wait on itself.
            let itself = b_name == packages[at].name;
            let ours = built_here(packages, at, &b_name, &b.version);
            if ours {
                if let Some(w) = pylock::best_wheel(&b.wheels) {
                    index_wheels.push(Pinned {
                        name: b.name.clone(),
                        version: b.version.clone(),
                        sha256: Sha256(w.sha256.clone()),
                    });
                }
                built.push((b_name, b.version.clone()));
                continue;
            }
            if let Some(w) = pylock::best_wheel(&b.wheels) {
                pins.push(Pinned {
                    name: b.name.clone(),
                    version: b.version.clone(),
                    sha256: Sha256(w.sha256.clone()),
                });
                continue;
            }
            // No wheel for the platform: build it here too, from its sdist.
            if itself {
                return Err(t.error(
                    &packages[at],
                    format!(
                        "its build needs `{b_name}` {} itself, and the index has no wheel of it for the platform",
                        b.version
                    ),
                ));
            }
            if packages.iter().any(|o| o.name == b_name) {
                return Err(t.error(
                    &packages[at],
                    format!(
                        "it needs `{b_name}` {} built from its sdist, but the request takes another version of `{b_name}`; pin one version with `override \"{b_name}\" {{ version \"==…\" }}`",
                        b.version
                    ),
                ));
            }
            let Some(s) = &b.sdist else {
                return Err(t.error(
                    &packages[at],
                    format!(
                        "`{b_name}` {} has neither a wheel for the platform nor an sdist",
                        b.version
                    ),
                ));
            };
            packages.push(LockedPackage {
                name: b_name.clone(),
                version: b.version.clone(),
                take: Take::Sdist,
                sdist: Some(LockedFile {
                    file: s.file.clone(),
                    sha256: Sha256(s.sha256.clone()),
                }),
                wheel: None,
                backend: None,
                asked: Vec::new(),
                build_requires: Vec::new(),
                built_requires: Vec::new(),
                at: packages[at].at,
            });
            built.push((b_name, b.version.clone()));
        }
        Ok(Split {
            pins,
            built,
            index_wheels,
        })
    }
}

/// The versions the request builds (`NAME`, `VERSION`) as the rounds of a lock like
/// `packages` saw them: in the first round, the sdists of the closure, which leaves out
/// those only a build needs (no wheel taken, and another sdist's build requires them);
/// in the last, every sdist. One set when they are the same.
fn previous_rounds(packages: &[LockedPackage]) -> Vec<Vec<(String, String)>> {
    let built: BTreeSet<(&str, &str)> = packages
        .iter()
        .flat_map(|p| {
            p.built_requires
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
        })
        .collect();
    let sdists = packages.iter().filter(|p| p.take == Take::Sdist);
    let all: Vec<(String, String)> = sdists
        .clone()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    let first: Vec<(String, String)> = sdists
        .filter(|p| p.wheel.is_some() || !built.contains(&(p.name.as_str(), p.version.as_str())))
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    if first == all {
        vec![all]
    } else {
        vec![first, all]
    }
}

/// Breaks every cycle among the builds of a resolution (`a`'s build installs the wheel built
/// of `b`, whose build installs the one built of `a`), which would otherwise leave each
/// waiting on the other. In each group of packages whose builds need each other, the first
/// in lock order with a built requirement in the group that the index has a wheel of builds
/// with that wheel instead, until no group is left. Returns the positions of a group that no
/// index wheel breaks, in lock order.
fn break_build_cycles(
    packages: &mut [LockedPackage],
    index_wheels: &IndexWheels,
) -> Result<(), Vec<usize>> {
    while let Some(mut group) = build_cycle(packages) {
        group.sort_unstable();
        let edge = group.iter().find_map(|&from| {
            packages[from].built_requires.iter().find_map(|(n, v)| {
                let to = group
                    .iter()
                    .find(|&&o| &packages[o].name == n && &packages[o].version == v)?;
                let wheel = index_wheels.get(&(from, n.clone()))?;
                Some((from, *to, wheel.clone()))
            })
        });
        let Some((from, to, wheel)) = edge else {
            return Err(group);
        };
        let (name, version) = (packages[to].name.clone(), packages[to].version.clone());
        let p = &mut packages[from];
        p.built_requires
            .retain(|(n, v)| (n, v) != (&name, &version));
        p.build_requires.push(wheel);
        p.build_requires.sort_by_cached_key(|w| normalize(&w.name));
    }
    Ok(())
}

/// A group of two or more packages whose builds need each other's built wheels (a strongly
/// connected component of the built-requirement graph), as positions in `packages`.
fn build_cycle(packages: &[LockedPackage]) -> Option<Vec<usize>> {
    let mut graph = petgraph::graph::DiGraph::<(), ()>::new();
    let nodes: Vec<_> = packages.iter().map(|_| graph.add_node(())).collect();
    for (from, p) in packages.iter().enumerate() {
        for (n, v) in &p.built_requires {
            if let Some(to) = packages
                .iter()
                .position(|o| &o.name == n && &o.version == v)
            {
                graph.add_edge(nodes[from], nodes[to], ());
            }
        }
    }
    petgraph::algo::tarjan_scc(&graph)
        .into_iter()
        .find(|group| group.len() > 1)
        .map(|group| {
            group
                .into_iter()
                .map(petgraph::graph::NodeIndex::index)
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, version: &str, take: Take) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            version: version.into(),
            take,
            sdist: None,
            wheel: None,
            backend: None,
            asked: Vec::new(),
            build_requires: Vec::new(),
            built_requires: Vec::new(),
            at: refine_rules::rules::Loc {
                file: 0,
                span: (0, 0).into(),
            },
        }
    }

    #[test]
    fn a_package_never_builds_with_its_own_built_wheel() {
        let packages = [
            package("jupyterlab-pygments", "0.3.0", Take::Sdist),
            package("nbconvert", "7.16.6", Take::Sdist),
            package("attrs", "26.1.0", Take::Wheel),
        ];
        // Its own build closure holds it (through jupyterlab): the index's wheel, not a wait
        // on itself.
        assert!(!built_here(&packages, 0, "jupyterlab-pygments", "0.3.0"));
        assert!(built_here(&packages, 0, "nbconvert", "7.16.6"));
        assert!(!built_here(&packages, 0, "nbconvert", "7.16.5"));
        assert!(!built_here(&packages, 0, "attrs", "26.1.0"));
    }

    fn builds_with(mut p: LockedPackage, built: &[&str]) -> LockedPackage {
        p.built_requires = built.iter().map(|n| (n.to_string(), "1".into())).collect();
        p
    }

    fn wheel(name: &str) -> Pinned {
        Pinned {
            name: name.into(),
            version: "1".into(),
            sha256: Sha256("0".repeat(64)),
        }
    }

    fn pinned(p: &LockedPackage) -> Vec<&str> {
        p.build_requires.iter().map(|w| w.name.as_str()).collect()
    }

    #[test]
    fn two_builds_that_need_each_other_take_the_index_wheel_of_one() {
        let mut packages = [
            builds_with(package("a", "1", Take::Sdist), &["b"]),
            builds_with(package("b", "1", Take::Sdist), &["a"]),
        ];
        let wheels =
            IndexWheels::from([((0, "b".into()), wheel("b")), ((1, "a".into()), wheel("a"))]);
        break_build_cycles(&mut packages, &wheels).unwrap();
        // The first in lock order builds with the index's `b`; `b` still waits on `a` built.
        assert!(packages[0].built_requires.is_empty());
        assert_eq!(pinned(&packages[0]), ["b"]);
        assert_eq!(
            packages[1].built_requires,
            [("a".to_string(), "1".to_string())]
        );
        assert!(packages[1].build_requires.is_empty());
    }

    #[test]
    fn a_longer_cycle_is_broken_where_the_index_has_a_wheel() {
        let mut packages = [
            builds_with(package("a", "1", Take::Sdist), &["b"]),
            builds_with(package("b", "1", Take::Sdist), &["c"]),
            builds_with(package("c", "1", Take::Sdist), &["a"]),
            builds_with(package("d", "1", Take::Sdist), &["a"]),
        ];
        let wheels =
            IndexWheels::from([((2, "a".into()), wheel("a")), ((3, "a".into()), wheel("a"))]);
        break_build_cycles(&mut packages, &wheels).unwrap();
        assert_eq!(pinned(&packages[2]), ["a"]);
        assert!(packages[2].built_requires.is_empty());
        // Outside the cycle nothing changes: `d` still builds with `a` built here.
        assert_eq!(
            packages[3].built_requires,
            [("a".to_string(), "1".to_string())]
        );
        assert_eq!(
            packages[0].built_requires,
            [("b".to_string(), "1".to_string())]
        );
        assert!(build_cycle(&packages).is_none());
    }

    #[test]
    fn questions_ahead_use_the_versions_of_the_first_round_and_of_the_last() {
        let pair = |n: &str| (n.to_string(), "1".to_string());
        let mut with_wheel = package("c", "1", Take::Sdist);
        with_wheel.wheel = Some(LockedFile {
            file: "c-1-py3-none-any.whl".into(),
            sha256: Sha256("0".repeat(64)),
        });
        // `n` is there only because `a`'s build needs it (no wheel taken, built for `a`);
        // `c` is built for `a` too, but it has a wheel, so the closure held it.
        let packages = [
            builds_with(package("a", "1", Take::Sdist), &["n", "c"]),
            package("b", "1", Take::Sdist),
            with_wheel,
            package("n", "1", Take::Sdist),
            package("w", "1", Take::Wheel),
        ];
        assert_eq!(
            previous_rounds(&packages),
            [
                vec![pair("a"), pair("b"), pair("c")],
                vec![pair("a"), pair("b"), pair("c"), pair("n")]
            ]
        );
        assert_eq!(
            previous_rounds(&packages[..3]),
            [vec![pair("a"), pair("b"), pair("c")]]
        );
    }

    #[test]
    fn a_cycle_without_index_wheels_is_named_whole() {
        let mut packages = [
            package("x", "1", Take::Wheel),
            builds_with(package("a", "1", Take::Sdist), &["b"]),
            builds_with(package("b", "1", Take::Sdist), &["a"]),
        ];
        let wheels = IndexWheels::from([((0, "a".into()), wheel("a"))]);
        assert_eq!(break_build_cycles(&mut packages, &wheels), Err(vec![1, 2]));
    }
}
