//! Scenario files (TOML): settings, data pools drawn from the target through
//! the API, weighted tasks of one or more requests with checks, captures and
//! think times, and thresholds. The format is described in
//! `docs/load-scenarios.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use rand::Rng;
use rand::rngs::StdRng;
use serde::Deserialize;
use serde_json::Value;

use crate::plan::Think;
use crate::threshold::Threshold;

/// Placeholders every scenario may use without declaring them.
pub const BUILT_INS: &[&str] = &["email", "password", "uuid", "seq"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    seed: Option<u64>,
    #[serde(default)]
    load: LoadSection,
    #[serde(default)]
    thresholds: Vec<String>,
    think: Option<String>,
    #[serde(default)]
    data: Vec<DataDef>,
    #[serde(default, rename = "task")]
    tasks: Vec<RawStep>,
}

/// `[load]`: the defaults the command line overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    pub users: Option<u32>,
    pub rate: Option<String>,
    pub duration: Option<String>,
    #[serde(default)]
    pub stages: Vec<String>,
    pub max_in_flight: Option<usize>,
    pub timeout: Option<String>,
}

/// `[[data]]`: a pool of values read from the target before the run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDef {
    pub name: String,
    /// A GET path answered with a JSON list page.
    pub get: String,
    /// Where the values are: `items[].variants[].id`.
    pub pick: String,
    /// Pages to follow through `next_cursor` (default 1).
    #[serde(default = "one")]
    pub pages: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<String>,
    weight: Option<u32>,
    method: Option<String>,
    path: Option<String>,
    body: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    auth: Option<bool>,
    status: Option<StatusSpec>,
    #[serde(default)]
    has: Vec<String>,
    #[serde(default)]
    equals: BTreeMap<String, Value>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
    think: Option<String>,
    #[serde(default)]
    thresholds: Vec<String>,
    #[serde(default)]
    step: Vec<RawStep>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: Option<u64>,
    pub load: LoadSection,
    pub thresholds: Vec<Threshold>,
    pub think: Think,
    pub data: Vec<DataDef>,
    pub tasks: Vec<Task>,
    /// Request types (step names), in first-seen order: (name, method, path).
    pub types: Vec<(String, String, String)>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub weight: u32,
    pub steps: Vec<Step>,
    /// Pause after the task (closed model); the scenario's when `None`.
    pub think: Option<Think>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub type_index: usize,
    pub name: String,
    pub method: String,
    pub path: Template,
    pub body: Option<Template>,
    pub headers: Vec<(String, Template)>,
    pub auth: bool,
    /// Accepted statuses; empty means any 2xx.
    pub status: Vec<u16>,
    pub has: Vec<String>,
    pub equals: Vec<(String, Value)>,
    pub capture: Vec<(String, String)>,
    /// Pause after this step, before the next one of the task.
    pub think: Think,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Scenario, String> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut thresholds = raw
            .thresholds
            .iter()
            .map(|t| Threshold::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        let think = match &raw.think {
            Some(t) => Think::parse(t)?,
            None => Think::default(),
        };
        if raw.tasks.is_empty() {
            return Err("a scenario needs at least one [[task]]".into());
        }
        let mut names: HashSet<String> = BUILT_INS.iter().map(|s| s.to_string()).collect();
        for d in &raw.data {
            if !names.insert(d.name.clone()) {
                return Err(format!("data pool `{}` is declared twice", d.name));
            }
            if d.pages == 0 || d.pages > 100 {
                return Err(format!("data pool `{}`: pages is 1 to 100", d.name));
            }
            Template::parse(&d.get)?;
        }
        let pools: HashSet<String> = raw.data.iter().map(|d| d.name.clone()).collect();
        let mut types: Vec<(String, String, String)> = Vec::new();
        let mut tasks = Vec::new();
        for (ti, raw_task) in raw.tasks.into_iter().enumerate() {
            let weight = raw_task.weight.unwrap_or(1);
            let task_name = raw_task
                .name
                .clone()
                .unwrap_or_else(|| format!("task {}", ti + 1));
            let task_think = match &raw_task.think {
                Some(t) => Some(Think::parse(t)?),
                None => None,
            };
            let raw_steps: Vec<RawStep> = if raw_task.step.is_empty() {
                let mut single = raw_task;
                single.think = None;
                vec![single]
            } else {
                if raw_task.path.is_some() || raw_task.method.is_some() {
                    return Err(format!(
                        "task `{task_name}`: give either one request (path) or [[task.step]]s, not both"
                    ));
                }
                for t in &raw_task.thresholds {
                    thresholds.push(Threshold::parse(&format!("{task_name}:{t}"))?);
                }
                raw_task.step
            };
            let mut captured: HashSet<String> = HashSet::new();
            let mut steps = Vec::new();
            for (si, rs) in raw_steps.into_iter().enumerate() {
                if !rs.step.is_empty() || (rs.weight.is_some() && si > 0) {
                    return Err(format!(
                        "task `{task_name}`: steps take no weight or steps of their own"
                    ));
                }
                let name = rs.name.clone().unwrap_or_else(|| {
                    if si == 0 {
                        task_name.clone()
                    } else {
                        format!("{task_name} {}", si + 1)
                    }
                });
                let path_text = rs
                    .path
                    .clone()
                    .ok_or_else(|| format!("request `{name}` has no path"))?;
                if !path_text.starts_with('/') {
                    return Err(format!(
                        "request `{name}`: the path starts with / (the URL comes from --url)"
                    ));
                }
                let method = rs
                    .method
                    .clone()
                    .unwrap_or_else(|| "GET".into())
                    .to_uppercase();
                if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str()) {
                    return Err(format!("request `{name}`: unknown method {method}"));
                }
                let path = Template::parse(&path_text)?;
                let body = rs.body.as_deref().map(Template::parse).transpose()?;
                let mut headers = Vec::new();
                for (k, v) in &rs.headers {
                    headers.push((k.clone(), Template::parse(v)?));
                }
                let known = |n: &str| names.contains(n) || captured.contains(n);
                for t in std::iter::once(&path)
                    .chain(body.iter())
                    .chain(headers.iter().map(|(_, t)| t))
                {
                    for var in t.vars() {
                        if !known(var) {
                            return Err(format!(
                                "request `{name}`: `{{{var}}}` is neither a data pool, a capture of an earlier step, nor one of {BUILT_INS:?}"
                            ));
                        }
                    }
                    if t.uses_items() && !pools.contains("variant_id") {
                        return Err(format!(
                            "request `{name}`: items(..) draws from a data pool named variant_id; declare it"
                        ));
                    }
                }
                for n in rs.capture.keys() {
                    captured.insert(n.clone());
                }
                let status = match rs.status {
                    None => Vec::new(),
                    Some(StatusSpec::One(s)) => vec![s],
                    Some(StatusSpec::Many(v)) => v,
                };
                for t in &rs.thresholds {
                    thresholds.push(Threshold::parse(&format!("{name}:{t}"))?);
                }
                let type_index = match types.iter().position(|(n, _, _)| n == &name) {
                    Some(i) => i,
                    None => {
                        types.push((name.clone(), method.clone(), path_text.clone()));
                        types.len() - 1
                    }
                };
                let step_think = match &rs.think {
                    Some(t) => Think::parse(t)?,
                    None => Think::default(),
                };
                steps.push(Step {
                    type_index,
                    name,
                    method,
                    path,
                    body,
                    headers,
                    auth: rs.auth.unwrap_or(true),
                    status,
                    has: rs.has,
                    equals: rs.equals.into_iter().collect(),
                    capture: rs.capture.into_iter().collect(),
                    think: step_think,
                });
            }
            if weight == 0 {
                continue;
            }
            tasks.push(Task {
                name: task_name,
                weight,
                steps,
                think: task_think,
            });
        }
        if tasks.is_empty() {
            return Err("every task has weight 0".into());
        }
        for t in &thresholds {
            if let Some(scope) = &t.scope
                && !types.iter().any(|(n, _, _)| n == scope)
                && !tasks.iter().any(|task| &task.name == scope)
            {
                return Err(format!(
                    "threshold `{}` names `{scope}`, which is no request of this scenario",
                    t.spec
                ));
            }
        }
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            seed: raw.seed,
            load: raw.load,
            thresholds,
            think,
            data: raw.data,
            tasks,
            types,
        })
    }

    /// Picks a task by weight.
    pub fn pick_task(&self, rng: &mut StdRng) -> &Task {
        let total: u32 = self.tasks.iter().map(|t| t.weight).sum();
        let mut n = rng.random_range(0..total);
        for t in &self.tasks {
            if n < t.weight {
                return t;
            }
            n -= t.weight;
        }
        &self.tasks[self.tasks.len() - 1]
    }

    /// Does any request or data pool need a token?
    pub fn needs_token(&self) -> bool {
        !self.data.is_empty() || self.tasks.iter().flat_map(|t| &t.steps).any(|s| s.auth)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
    /// `items(N)` or `items(A..B)`: a JSON array of distinct
    /// `{"variant_id", "quantity"}` lines from the `variant_id` pool.
    Items(u32, u32),
    /// `int(A..B)`: a random integer, both ends included.
    Int(i64, i64),
}

/// A path, body or header with `{placeholders}`. A `{` that does not open a
/// placeholder (JSON's own braces) is kept as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

fn range_args(args: &str) -> Option<(i64, i64)> {
    match args.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let n = args.trim().parse().ok()?;
            Some((n, n))
        }
    }
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let ident_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let ident = &after[..ident_len];
            let starts_ident = ident
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            let tail = &after[ident_len..];
            let parsed = if !starts_ident {
                None
            } else if let Some(t) = tail.strip_prefix('}') {
                Some((Part::Var(ident.to_owned()), t))
            } else if let Some(t) = tail.strip_prefix('(') {
                let close = t
                    .find(")}")
                    .ok_or_else(|| format!("`{{{ident}(` is not closed with )}} in `{s}`"))?;
                let args = &t[..close];
                let part = match (ident, range_args(args)) {
                    ("items", Some((a, b))) if a >= 1 && b <= 500 => {
                        Part::Items(a as u32, b as u32)
                    }
                    ("int", Some((a, b))) => Part::Int(a, b),
                    _ => {
                        return Err(format!(
                            "`{{{ident}({args})}}` in `{s}`: use items(N) / items(A..B) with 1–500 lines, or int(A..B)"
                        ));
                    }
                };
                Some((part, &t[close + 2..]))
            } else {
                None
            };
            match parsed {
                Some((part, t)) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                    rest = t;
                }
                None => {
                    lit.push('{');
                    rest = after;
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    fn uses_items(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Items(..)))
    }

    /// Fills the template. `lookup` answers a variable (drawing it from its
    /// pool the first time in a task run); `variants` is the `variant_id`
    /// pool for `items(..)`.
    pub fn render(
        &self,
        escape: Escape,
        rng: &mut StdRng,
        variants: &[String],
        lookup: &mut dyn FnMut(&str, &mut StdRng) -> Option<String>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Var(v) => {
                    let value = lookup(v, rng).ok_or_else(|| format!("no value for `{{{v}}}`"))?;
                    escape.push(&mut out, &value);
                }
                Part::Int(a, b) => out.push_str(&rng.random_range(*a..=*b).to_string()),
                Part::Items(a, b) => {
                    let n = (rng.random_range(*a..=*b) as usize).min(variants.len());
                    let chosen = rand::seq::index::sample(rng, variants.len(), n);
                    let lines: Vec<Value> = chosen
                        .iter()
                        .map(|i| {
                            serde_json::json!({
                                "variant_id": variants[i],
                                "quantity": rng.random_range(1..=3),
                            })
                        })
                        .collect();
                    out.push_str(&Value::Array(lines).to_string());
                }
            }
        }
        Ok(out)
    }
}

/// How a variable's value is written into the text around it.
#[derive(Debug, Clone, Copy)]
pub enum Escape {
    /// Percent-encoded (paths and query strings).
    Url,
    /// Escaped as inside a JSON string (bodies).
    Json,
    /// As it is (headers).
    None,
}

impl Escape {
    fn push(self, out: &mut String, value: &str) {
        match self {
            Escape::None => out.push_str(value),
            Escape::Json => {
                let quoted = Value::String(value.to_owned()).to_string();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            Escape::Url => {
                for b in value.bytes() {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        out.push(b as char);
                    } else {
                        out.push_str(&format!("%{b:02X}"));
                    }
                }
            }
        }
    }
}

/// The value at a dotted path (`items.0.id`, `customer.email`).
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(v, |v, seg| match v {
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            Value::Object(o) => o.get(seg),
            _ => None,
        })
}

/// A value as template text: strings as they are, others as JSON.
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every value at `items[].variants[].id`: a `[]` segment walks each
/// element of an array.
pub fn pick(v: &Value, path: &str) -> Vec<String> {
    let mut current = vec![v];
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (key, each) = match seg.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (seg, false),
        };
        let mut next = Vec::new();
        for v in current {
            let inner = if key.is_empty() {
                Some(v)
            } else {
                lookup(v, key)
            };
            match (inner, each) {
                (Some(Value::Array(a)), true) => next.extend(a.iter()),
                (Some(x), false) => next.push(x),
                _ => {}
            }
        }
        current = next;
    }
    current
        .into_iter()
        .filter(|v| !v.is_null())
        .map(as_text)
        .collect()
}

/// Values for one task run: captures and the pool values drawn so far.
pub type Vars = HashMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn every_scenario_file_parses() {
        // The directory cargo runs the test from, not the one it was built
        // in: a shared target directory may hold a binary built from
        // another checkout of the same sources.
        let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
            || env!("CARGO_MANIFEST_DIR").into(),
            std::path::PathBuf::from,
        );
        let dir = crate_dir.join("../../scenarios");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("scenarios/ at the repo root") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!s.tasks.is_empty());
                seen.push(path.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        seen.sort();
        for required in [
            "business-day",
            "customer-search",
            "dashboard",
            "login",
            "place-order",
            "pricing-50-lines",
            "product-detail",
            "product-pages",
            "share-link-hits",
        ] {
            assert!(
                seen.iter().any(|s| s == required),
                "scenarios/{required}.toml"
            );
        }
    }

    const SMALL: &str = r#"
        name = "small"
        seed = 7
        think = "10ms..20ms"
        thresholds = ["p95<200ms", "error_rate<1%"]
        [load]
        users = 4
        duration = "2s"
        [[data]]
        name = "variant_id"
        get = "/api/v1/products?include=variants&limit=100"
        pick = "items[].variants[].id"
        [[data]]
        name = "customer_id"
        get = "/api/v1/customers?limit=100"
        pick = "items[].id"
        [[task]]
        name = "list"
        weight = 3
        path = "/api/v1/products?limit=20"
        has = ["items"]
        [[task]]
        name = "quote"
        thresholds = ["p99<1s"]
        [[task.step]]
        name = "create quotation"
        method = "post"
        path = "/api/v1/quotations"
        body = '{"customer_id": "{customer_id}", "items": {items(2..3)}}'
        status = 201
        equals = { status = "draft" }
        capture = { quotation_id = "id" }
        [[task.step]]
        name = "send quotation"
        method = "POST"
        path = "/api/v1/quotations/{quotation_id}/send"
        status = [200]
        thresholds = ["p95<100ms"]
    "#;

    #[test]
    fn parses_tasks_steps_and_thresholds() {
        let s = Scenario::parse(SMALL).unwrap();
        assert_eq!(s.name, "small");
        assert_eq!(s.tasks.len(), 2);
        assert_eq!(s.tasks[0].weight, 3);
        assert_eq!(s.tasks[1].steps.len(), 2);
        let create = &s.tasks[1].steps[0];
        assert_eq!(create.method, "POST");
        assert_eq!(create.status, vec![201]);
        assert_eq!(create.capture, vec![("quotation_id".into(), "id".into())]);
        assert_eq!(create.equals, vec![("status".into(), json!("draft"))]);
        let names: Vec<&str> = s.types.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(names, ["list", "create quotation", "send quotation"]);
        let specs: Vec<&str> = s.thresholds.iter().map(|t| t.spec.as_str()).collect();
        assert_eq!(
            specs,
            [
                "p95<200ms",
                "error_rate<1%",
                "quote:p99<1s",
                "send quotation:p95<100ms"
            ]
        );
        assert_eq!(s.load.users, Some(4));
        assert!(s.needs_token());
    }

    #[test]
    fn refuses_unknown_placeholders_and_fields() {
        let unknown = SMALL.replace("{quotation_id}/send", "{quote_id}/send");
        let err = Scenario::parse(&unknown).unwrap_err();
        assert!(err.contains("quote_id"), "{err}");
        let typo = SMALL.replace("has = [\"items\"]", "hass = [\"items\"]");
        assert!(Scenario::parse(&typo).is_err());
        let bad_scope = SMALL.replace("\"p95<200ms\",", "\"checkout:p95<200ms\",");
        assert!(
            Scenario::parse(&bad_scope)
                .unwrap_err()
                .contains("checkout")
        );
        assert!(Scenario::parse("name = \"x\"").is_err());
    }

    #[test]
    fn templates_render() {
        let mut rng = StdRng::seed_from_u64(1);
        let variants: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
        let t =
            Template::parse(r#"{"q": "{name}", "n": {int(5..5)}, "items": {items(3)}}"#).unwrap();
        let mut lookup = |v: &str, _: &mut StdRng| (v == "name").then(|| "A \"B\"".to_owned());
        let out = t
            .render(Escape::Json, &mut rng, &variants, &mut lookup)
            .unwrap();
        let parsed: Value = serde_json::from_str(&out).expect(&out);
        assert_eq!(parsed["q"], "A \"B\"");
        assert_eq!(parsed["n"], 5);
        let items = parsed["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        let distinct: HashSet<&str> = items
            .iter()
            .map(|i| i["variant_id"].as_str().unwrap())
            .collect();
        assert_eq!(distinct.len(), 3, "lines name distinct variants");
        // Paths are percent-encoded; `{` that opens no placeholder stays.
        let p = Template::parse("/c?q={name}&x={").unwrap();
        let out = p
            .render(Escape::Url, &mut rng, &variants, &mut lookup)
            .unwrap();
        assert_eq!(out, "/c?q=A%20%22B%22&x={");
        // More lines than variants: as many as there are.
        let many = Template::parse("{items(50)}").unwrap();
        let out = many
            .render(Escape::Json, &mut rng, &variants, &mut lookup)
            .unwrap();
        assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap().len(), 10);
        assert!(Template::parse("{items(0)}").is_err());
        assert!(Template::parse("{int(9..1)}").is_err());
    }

    #[test]
    fn picks_and_lookups() {
        let page = json!({"items": [
            {"id": "p1", "variants": [{"id": "v1"}, {"id": "v2"}]},
            {"id": "p2", "variants": [{"id": "v3"}]},
            {"id": "p3"}
        ], "next_cursor": null});
        assert_eq!(pick(&page, "items[].variants[].id"), ["v1", "v2", "v3"]);
        assert_eq!(pick(&page, "items[].id"), ["p1", "p2", "p3"]);
        assert!(pick(&page, "nothing[].id").is_empty());
        assert_eq!(lookup(&page, "items.1.variants.0.id"), Some(&json!("v3")));
        assert_eq!(lookup(&page, "items.9"), None);
        assert_eq!(as_text(&json!(5)), "5");
    }
}
