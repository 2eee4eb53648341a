//! The engine: users of the closed model, arrivals of the open model, one
//! request of a step, checks and captures. Every loop ends at the plan's
//! deadline; answers in flight then get the request timeout, no more.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use crate::plan::{Plan, Think};
use crate::scenario::{Escape, Scenario, Step, Task, Vars, as_text, lookup};
use crate::stats::Recorder;

pub struct Ctx {
    pub client: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    /// `email`, `password`.
    pub globals: HashMap<String, String>,
    pub pools: HashMap<String, Vec<String>>,
    pub scenario: Scenario,
    pub recorder: Recorder,
    pub seed: u64,
    pub seq: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
pub enum Model {
    Closed,
    Open { max_in_flight: usize },
}

fn rng_for(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

async fn think(t: Think, rng: &mut StdRng, deadline: Instant) {
    if t.max.is_zero() {
        return;
    }
    let d = if t.max > t.min {
        rng.random_range(t.min..=t.max)
    } else {
        t.min
    };
    sleep_until((Instant::now() + d).min(deadline).into()).await;
}

/// Runs the plan to its end; returns when every user or arrival is done
/// (or abandoned after `grace`).
pub async fn execute(ctx: Arc<Ctx>, plan: Plan, model: Model, grace: Duration) {
    let start = ctx.recorder.start;
    let deadline = start + plan.total();
    let active = Arc::new(AtomicUsize::new(0));
    // The observer: the plan's level and what is running, ten times a second.
    let observer = {
        let (ctx, active, plan) = (ctx.clone(), active.clone(), plan.clone());
        tokio::spawn(async move {
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let t = (now - start).as_secs_f64();
                ctx.recorder
                    .observe(now, active.load(Ordering::Relaxed) as u64, plan.level_at(t));
                sleep_until((now + Duration::from_millis(100)).min(deadline).into()).await;
            }
        })
    };
    let mut set = JoinSet::new();
    match model {
        Model::Closed => {
            let target = Arc::new(AtomicUsize::new(0));
            let mut spawned = 0usize;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let level = plan.level_at((now - start).as_secs_f64());
                let n = level.round() as usize;
                target.store(n, Ordering::Relaxed);
                while spawned < n {
                    let (ctx, target, active) = (ctx.clone(), target.clone(), active.clone());
                    let index = spawned;
                    set.spawn(user(ctx, index, target, active, deadline));
                    spawned += 1;
                }
                sleep_until((now + Duration::from_millis(50)).min(deadline).into()).await;
            }
        }
        Model::Open { max_in_flight } => {
            let mut rng = rng_for(ctx.seed, u64::MAX);
            let mut n = 0u64;
            while let Some(t) = plan.arrival_time(n) {
                n += 1;
                let intended = start + Duration::from_secs_f64(t);
                if intended >= deadline {
                    break;
                }
                sleep_until(intended.into()).await;
                while set.try_join_next().is_some() {}
                if active.load(Ordering::Relaxed) >= max_in_flight {
                    ctx.recorder.dropped(intended);
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let task_index = task_index(&ctx.scenario, &mut rng);
                let task_seed: u64 = rng.random();
                let (ctx, active) = (ctx.clone(), active.clone());
                set.spawn(async move {
                    let mut rng = StdRng::seed_from_u64(task_seed);
                    let task = &ctx.scenario.tasks[task_index];
                    run_task(&ctx, task, &mut rng, Some(intended), deadline).await;
                    active.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    }
    let _ = observer.await;
    let give_up = Instant::now().max(deadline) + grace;
    while !set.is_empty() {
        match tokio::time::timeout_at(give_up.into(), set.join_next()).await {
            Ok(_) => {}
            Err(_) => {
                set.abort_all();
                break;
            }
        }
    }
}

fn task_index(s: &Scenario, rng: &mut StdRng) -> usize {
    let picked = s.pick_task(rng) as *const Task;
    s.tasks
        .iter()
        .position(|t| std::ptr::eq(t, picked))
        .unwrap_or(0)
}

async fn user(
    ctx: Arc<Ctx>,
    index: usize,
    target: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    deadline: Instant,
) {
    let mut rng = rng_for(ctx.seed, index as u64);
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if index >= target.load(Ordering::Relaxed) {
            // Ramped down: wait for the level to come back (or the end).
            sleep_until((now + Duration::from_millis(50)).min(deadline).into()).await;
            continue;
        }
        let task = ctx.scenario.pick_task(&mut rng);
        active.fetch_add(1, Ordering::Relaxed);
        run_task(&ctx, task, &mut rng, None, deadline).await;
        active.fetch_sub(1, Ordering::Relaxed);
        think(task.think.unwrap_or(ctx.scenario.think), &mut rng, deadline).await;
    }
}

/// One run of a task: its steps in order, sharing drawn values and
/// captures; a failed step ends the run (what follows depends on it).
pub async fn run_task(
    ctx: &Ctx,
    task: &Task,
    rng: &mut StdRng,
    intended: Option<Instant>,
    deadline: Instant,
) {
    let mut vars = Vars::new();
    for (i, step) in task.steps.iter().enumerate() {
        if i > 0 && Instant::now() >= deadline {
            break;
        }
        let from = if i == 0 { intended } else { None };
        if !run_step(ctx, step, rng, &mut vars, from).await {
            break;
        }
        if i + 1 < task.steps.len() {
            think(step.think, rng, deadline).await;
        }
    }
}

fn draw(ctx: &Ctx, vars: &mut Vars, name: &str, rng: &mut StdRng) -> Option<String> {
    if let Some(v) = vars.get(name) {
        return Some(v.clone());
    }
    match name {
        "uuid" => return Some(format!("{:032x}", rng.random::<u128>())),
        "seq" => return Some(ctx.seq.fetch_add(1, Ordering::Relaxed).to_string()),
        _ => {}
    }
    if let Some(g) = ctx.globals.get(name) {
        return Some(g.clone());
    }
    let pool = ctx.pools.get(name)?;
    if pool.is_empty() {
        return None;
    }
    let v = pool[rng.random_range(0..pool.len())].clone();
    vars.insert(name.to_owned(), v.clone());
    Some(v)
}

/// Sends one request, checks it, records it. `intended`: the open model's
/// send time, from which the latency counts.
async fn run_step(
    ctx: &Ctx,
    step: &Step,
    rng: &mut StdRng,
    vars: &mut Vars,
    intended: Option<Instant>,
) -> bool {
    let empty = Vec::new();
    let variants = ctx.pools.get("variant_id").unwrap_or(&empty);
    let mut lookup_var = |name: &str, rng: &mut StdRng| draw(ctx, vars, name, rng);
    let rendered = (|| -> Result<_, String> {
        let path = step
            .path
            .render(Escape::Url, rng, variants, &mut lookup_var)?;
        let body = match &step.body {
            Some(b) => Some(b.render(Escape::Json, rng, variants, &mut lookup_var)?),
            None => None,
        };
        let mut headers = Vec::new();
        for (k, v) in &step.headers {
            headers.push((
                k.clone(),
                v.render(Escape::None, rng, variants, &mut lookup_var)?,
            ));
        }
        Ok((path, body, headers))
    })();
    let (path, body, headers) = match rendered {
        Ok(r) => r,
        Err(e) => {
            let now = Instant::now();
            ctx.recorder.record(
                step.type_index,
                Duration::ZERO,
                now,
                Some((0, format!("template: {e}"))),
            );
            return false;
        }
    };
    let method =
        reqwest::Method::from_bytes(step.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = ctx.client.request(method, format!("{}{path}", ctx.base));
    if step.auth
        && let Some(t) = &ctx.token
    {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let sent = Instant::now();
    let from = intended.unwrap_or(sent);
    let answer = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(b) => Ok((status, b)),
                Err(e) => Err(transport_kind(&e)),
            }
        }
        Err(e) => Err(transport_kind(&e)),
    };
    let done = Instant::now();
    let latency = done.saturating_duration_since(from);
    let (status, bytes) = match answer {
        Ok(a) => a,
        Err(kind) => {
            ctx.recorder
                .record(step.type_index, latency, done, Some((0, kind.to_owned())));
            return false;
        }
    };
    let accepted = if step.status.is_empty() {
        (200..300).contains(&status)
    } else {
        step.status.contains(&status)
    };
    let error = if !accepted {
        let code = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "unexpected status".to_owned());
        Some((status, code))
    } else if step.has.is_empty() && step.equals.is_empty() && step.capture.is_empty() {
        None
    } else {
        check_body(step, &bytes, vars).map(|why| (status, format!("check: {why}")))
    };
    let ok = error.is_none();
    ctx.recorder.record(step.type_index, latency, done, error);
    ok
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

/// The first failed check, or `None`; stores captures in `vars`.
pub fn check_body(step: &Step, bytes: &[u8], vars: &mut Vars) -> Option<String> {
    let v: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return Some("body is not JSON".into()),
    };
    for field in &step.has {
        if lookup(&v, field).is_none_or(Value::is_null) {
            return Some(format!("{field} missing"));
        }
    }
    for (field, want) in &step.equals {
        match lookup(&v, field) {
            Some(got) if got == want => {}
            Some(got) => return Some(format!("{field} is {got}, not {want}")),
            None => return Some(format!("{field} missing")),
        }
    }
    for (name, field) in &step.capture {
        match lookup(&v, field) {
            Some(got) if !got.is_null() => {
                vars.insert(name.clone(), as_text(got));
            }
            _ => return Some(format!("{field} missing (to capture {name})")),
        }
    }
    None
}
