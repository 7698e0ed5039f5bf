//! One builder for the integration tests' setup: a simulated gateway in-process (preset,
//! scenario tweaks, clock), a temp workspace, contracts caches written from the simulator's
//! market, and a plan file against the simulator, so each test states only what differs.

use super::{first_symbols, sim_today, Caches, PlanSpec, Workspace};
use opt_backfill::sim::{start, Market, Scenario, SimHandle};
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

/// Which symbols the fixture's caches and plan name.
enum Symbols<'a> {
    /// The first `n` of the simulated universe.
    First(usize),
    /// These.
    Named(Vec<String>),
    /// Chosen from the market.
    Pick(Picker<'a>),
}

/// Chooses symbols from the market.
type Picker<'a> = Box<dyn FnOnce(&Market) -> Vec<String> + 'a>;

/// A scenario tweak.
type Tweak<'a> = Box<dyn FnOnce(&mut Scenario) + 'a>;

/// Builds a [`Fixture`]: `Fixture::builder().preset("fast").symbols(2).caches(..).plan(..)`.
pub struct FixtureBuilder<'a> {
    preset: String,
    tweaks: Vec<Tweak<'a>>,
    symbols: Symbols<'a>,
    caches: Option<Caches>,
    plan: Option<PlanSpec>,
    gateway_port: Option<u16>,
}

/// A running simulator, a workspace with caches from its market, and a plan against it. The
/// fields are public so a test can take them apart into the locals it names; bind `sim` (as
/// `_sim` if unused): a dropped handle stops the server.
pub struct Fixture {
    /// The simulated gateway (address, counters, request log).
    pub sim: SimHandle,
    /// Its market.
    pub market: Arc<Market>,
    /// The symbols of the caches and plan.
    pub syms: Vec<String>,
    /// The workspace.
    pub ws: Workspace,
    /// The plan file (empty when the builder was given no plan).
    pub plan: PathBuf,
    /// Contracts written to the caches.
    pub contracts: usize,
}

impl Fixture {
    /// A builder with the `fast` preset, no symbols, no caches, no plan.
    pub fn builder<'a>() -> FixtureBuilder<'a> {
        FixtureBuilder {
            preset: "fast".into(),
            tweaks: Vec::new(),
            symbols: Symbols::Named(Vec::new()),
            caches: None,
            plan: None,
            gateway_port: None,
        }
    }

    /// `execute` on the fixture's plan with `extra` arguments, through the binary.
    pub async fn execute(&self, extra: &[&str]) -> Output {
        self.ws.execute(&self.plan, extra).await
    }
}

impl<'a> FixtureBuilder<'a> {
    /// The simulator's preset (`fast` by default).
    pub fn preset(mut self, name: &str) -> Self {
        self.preset = name.into();
        self
    }

    /// Tweak the scenario (after the preset and the tests' `today`); tweaks apply in order.
    pub fn scenario(mut self, f: impl FnOnce(&mut Scenario) + 'a) -> Self {
        self.tweaks.push(Box::new(f));
        self
    }

    /// The simulator's `today`.
    pub fn today(self, d: chrono::NaiveDate) -> Self {
        self.scenario(move |sc| sc.today = d)
    }

    /// The simulator's clock.
    pub fn clock(self, clock: opt_backfill::sim::SimClock) -> Self {
        self.scenario(move |sc| sc.clock = clock)
    }

    /// The first `n` symbols of the simulated universe.
    pub fn symbols(mut self, n: usize) -> Self {
        self.symbols = Symbols::First(n);
        self
    }

    /// These symbols.
    pub fn named(mut self, syms: &[&str]) -> Self {
        self.symbols = Symbols::Named(syms.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Symbols chosen from the market.
    pub fn pick(mut self, f: impl FnOnce(&Market) -> Vec<String> + 'a) -> Self {
        self.symbols = Symbols::Pick(Box::new(f));
        self
    }

    /// Write caches for the symbols from the simulator's market.
    pub fn caches(mut self, caches: Caches) -> Self {
        self.caches = Some(caches);
        self
    }

    /// Write a plan for the symbols against the simulator.
    pub fn plan(mut self, spec: PlanSpec) -> Self {
        self.plan = Some(spec);
        self
    }

    /// Point the plan at this port instead of the simulator's (a gateway started later, or a
    /// fake one).
    pub fn gateway_port(mut self, port: u16) -> Self {
        self.gateway_port = Some(port);
        self
    }

    /// Start the simulator on 127.0.0.1:0 and write the workspace.
    pub async fn build(self) -> Fixture {
        let mut sc = Scenario::preset(&self.preset).unwrap();
        sc.today = sim_today();
        for t in self.tweaks {
            t(&mut sc);
        }
        let sim = start(sc, "127.0.0.1:0").await.unwrap();
        let market = sim.market();
        let syms = match self.symbols {
            Symbols::First(n) => first_symbols(&market, n),
            Symbols::Named(v) => v,
            Symbols::Pick(f) => f(&market),
        };
        let ws = Workspace::new();
        let contracts = match self.caches {
            Some(c) => ws.write_caches(&market, &syms, c),
            None => 0,
        };
        let port = self.gateway_port.unwrap_or(sim.addr().port());
        let plan = match &self.plan {
            Some(spec) => ws.write_plan(spec, &syms, port),
            None => PathBuf::new(),
        };
        Fixture {
            sim,
            market,
            syms,
            ws,
            plan,
            contracts,
        }
    }
}
