//! Placeholders in a profile's templates: `%{name}` inside a string value is replaced, at review,
//! by the value of the parameter `name` (or of a built-in such as `%{pod.namespace}`) for that Pod.
//!
//! Why `%{…}`: Kubernetes itself expands `$(VAR)` in `command`, `args` and env values, shell
//! scripts in `command` use `${VAR}`, and `{{ … }}` would be eaten by Helm when the configuration
//! is shipped in a chart. `%%{` writes a literal `%{`.
//!
//! A template is compiled once, at load: strings without a placeholder are final (escapes already
//! resolved), and each string with one becomes a [`Hole`] at a JSON pointer, with its parts. At
//! review, [`Template::render`] borrows a template without holes and otherwise clones it and fills
//! each hole in one pass, so a value that contains placeholder text is never expanded again.
//!
//! ```text
//! args: ["--path=%{logPath}", "--ns=%{pod.namespace}", "100%%{literal}"]
//!        hole: "--path=" + logPath  hole                 final: "100%{literal}"
//! ```

use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

use super::error::ConfigError;

mod rendered;

pub(crate) use rendered::Rendered;

/// Where a placeholder's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The profile's declared parameter at this index (in the order of `Profile::parameters`).
    Parameter(usize),
    /// `pod.namespace`: the namespace the Pod is created in.
    Namespace,
    /// `pod.serviceAccountName`: `default` when the Pod names none, as the API server sets it.
    ServiceAccountName,
    /// `pod.appContainer`: the name of the Pod's first container.
    AppContainer,
}

/// The built-in values, by the name a template uses. A Pod's own name is not one: controllers
/// create Pods with `generateName`, so at admission it is usually empty (docs/configuration.md).
pub(crate) const BUILT_INS: [(&str, Source); 3] = [
    ("pod.namespace", Source::Namespace),
    ("pod.serviceAccountName", Source::ServiceAccountName),
    ("pod.appContainer", Source::AppContainer),
];

/// What a placeholder is filled with when a template is checked at load and its parameter has no
/// default to check with (a required one): the checks in `fields` pass over any text holding it,
/// and check that field again at review, with the Pod's value. A noncharacter: YAML cannot carry
/// it, so no configuration writes it.
pub(crate) const UNKNOWN: &str = "\u{FFFF}";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Source),
}

/// A string value with placeholders, at `pointer` in its template.
#[derive(Debug, Clone)]
struct Hole {
    pointer: String,
    parts: Vec<Part>,
    /// The string is one Kubernetes expands `$(VAR)` in (a container's command, args or env
    /// value): a `$` in a substituted value is written `$$`, so it stays literal there too.
    kube_expands: bool,
}

impl Hole {
    fn sources(&self) -> impl Iterator<Item = Source> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Value(source) => Some(*source),
            Part::Text(_) => None,
        })
    }
}

/// Where in a template Kubernetes expands `$(VAR)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expands {
    /// A container: its `command`, `args` and `env[].value`.
    Container,
    /// An env var (of `appContainers.env`): its `value`.
    EnvVar,
    No,
}

/// A JSON template compiled for rendering; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    value: Value,
    form: Form,
}

/// Whether a template is filled for each Pod or written as it is.
#[derive(Debug, Clone)]
enum Form {
    /// No placeholder: `value` as JSON, written once at load, what the patch writes.
    Fixed(Box<RawValue>),
    /// The strings with placeholders, filled for each Pod.
    Holes(Vec<Hole>),
}

/// What a placeholder refers to, as the compiler resolves names.
pub(crate) trait Names {
    fn source(&self, name: &str) -> Option<Source>;
    /// For the error message: the names a template may use.
    fn known(&self) -> String;
}

impl Template {
    /// Compile a template at `path` (as in `profiles.p.sidecars[0]`).
    pub fn compile(
        mut value: Value,
        path: &str,
        names: &dyn Names,
        expands: Expands,
    ) -> Result<Self, ConfigError> {
        let mut walk = Walk { path, names, expands, pointer: String::new(), holes: Vec::new() };
        walk.value(&mut value)?;
        let form = if walk.holes.is_empty() {
            Form::Fixed(serde_json::value::to_raw_value(&value).expect("values serialize"))
        } else {
            Form::Holes(walk.holes)
        };
        Ok(Template { value, form })
    }

    /// A string template: a label or annotation value.
    pub fn text(text: &str, path: &str, names: &dyn Names) -> Result<Self, ConfigError> {
        Template::compile(Value::String(text.to_owned()), path, names, Expands::No)
    }

    /// The JSON pointers of the strings with placeholders.
    pub fn hole_pointers(&self) -> impl Iterator<Item = &str> {
        self.holes().iter().map(|hole| hole.pointer.as_str())
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn has_holes(&self) -> bool {
        matches!(self.form, Form::Holes(_))
    }

    fn holes(&self) -> &[Hole] {
        match &self.form {
            Form::Fixed(_) => &[],
            Form::Holes(holes) => holes,
        }
    }

    /// The sources this template reads.
    pub fn sources(&self) -> impl Iterator<Item = Source> + '_ {
        self.holes().iter().flat_map(|hole| hole.sources())
    }

    /// The sources read by the field at `path` (as in `.resources.limits.cpu`), or, when it has no
    /// placeholder itself (a check of a whole object), every source of the template.
    pub fn sources_at(&self, path: &str) -> Vec<Source> {
        let at = self.holes().iter().filter(|hole| readable(&hole.pointer) == path);
        let here: Vec<Source> = at.flat_map(Hole::sources).collect();
        if here.is_empty() { self.sources().collect() } else { here }
    }

    /// The template with every placeholder replaced by `value_of` its source; the configuration's
    /// own when there are none.
    pub fn render<'t, 'v>(&'t self, value_of: &dyn Fn(Source) -> &'v str) -> Rendered<'t> {
        let holes = match &self.form {
            Form::Fixed(json) => return Rendered::Config { value: &self.value, json },
            Form::Holes(holes) => holes,
        };
        let mut value = self.value.clone();
        for hole in holes {
            let mut text = String::new();
            for part in &hole.parts {
                match part {
                    Part::Text(literal) => text.push_str(literal),
                    Part::Value(source) if hole.kube_expands => {
                        text.push_str(&value_of(*source).replace('$', "$$"))
                    }
                    Part::Value(source) => text.push_str(value_of(*source)),
                }
            }
            if let Some(slot) = value.pointer_mut(&hole.pointer) {
                *slot = Value::String(text);
            }
        }
        Rendered::Filled(value)
    }
}

/// A rendered string template as text (labels and annotations).
pub(crate) fn as_text(rendered: Rendered<'_>) -> Cow<'_, str> {
    match rendered {
        Rendered::Config { value: Value::String(text), .. } => Cow::Borrowed(text.as_str()),
        Rendered::Filled(Value::String(text)) => Cow::Owned(text),
        _ => Cow::Borrowed(""),
    }
}

/// The compiler's state while it walks one template.
struct Walk<'a> {
    path: &'a str,
    names: &'a dyn Names,
    expands: Expands,
    pointer: String,
    holes: Vec<Hole>,
}

impl Walk<'_> {
    fn value(&mut self, value: &mut Value) -> Result<(), ConfigError> {
        match value {
            Value::String(text) => self.string(text)?,
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.child(&i.to_string(), item)?;
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if key.contains("%{") {
                        let why = format!("{key:?}: placeholders go in string values, never in keys");
                        return Err(ConfigError::at(self.here(), why));
                    }
                    self.child(&key.replace('~', "~0").replace('/', "~1"), item)?;
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    fn child(&mut self, token: &str, item: &mut Value) -> Result<(), ConfigError> {
        let len = self.pointer.len();
        self.pointer.push('/');
        self.pointer.push_str(token);
        self.value(item)?;
        self.pointer.truncate(len);
        Ok(())
    }

    fn string(&mut self, text: &mut String) -> Result<(), ConfigError> {
        let mut parts = Vec::new();
        for part in parse(text).map_err(|why| ConfigError::at(self.here(), why))? {
            parts.push(match part {
                Parsed::Text(literal) => Part::Text(literal),
                Parsed::Name(name) => Part::Value(self.names.source(&name).ok_or_else(|| {
                    let why = format!(
                        "%{{{name}}} is not a declared parameter or a built-in ({})",
                        self.names.known()
                    );
                    ConfigError::at(self.here(), why)
                })?),
            });
        }
        match parts.as_slice() {
            [] => text.clear(),
            [Part::Text(literal)] => *text = literal.clone(),
            _ => {
                let kube_expands = match self.expands {
                    Expands::Container => expands_in_container(&self.pointer),
                    Expands::EnvVar => self.pointer == "/value",
                    Expands::No => false,
                };
                self.holes.push(Hole { pointer: self.pointer.clone(), parts, kube_expands });
            }
        }
        Ok(())
    }

    fn here(&self) -> String {
        format!("{}{}", self.path, readable(&self.pointer))
    }
}

/// `/args/1` as `.args[1]`, for error messages in the configuration's own terms.
pub(crate) fn readable(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|token| match token.parse::<usize>() {
            Ok(i) => format!("[{i}]"),
            Err(_) => format!(".{}", token.replace("~1", "/").replace("~0", "~")),
        })
        .collect()
}

/// Kubernetes expands `$(VAR)` in a container's `command`, `args` and `env[].value`.
fn expands_in_container(pointer: &str) -> bool {
    let mut tokens = pointer.split('/').skip(1);
    matches!(
        (tokens.next(), tokens.next(), tokens.next(), tokens.next()),
        (Some("command" | "args"), Some(_), None, None) | (Some("env"), Some(_), Some("value"), None)
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Text(String),
    Name(String),
}

/// Split a string into literal text and placeholder names: `%{name}` is a placeholder, `%%{` a
/// literal `%{`, any other `%` is itself.
fn parse(text: &str) -> Result<Vec<Parsed>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("%{") {
        let escaped = rest[..at].ends_with('%');
        literal.push_str(&rest[..at - usize::from(escaped)]);
        rest = &rest[at + 2..];
        if escaped {
            literal.push_str("%{");
            continue;
        }
        let Some(end) = rest.find('}') else {
            return Err(format!(
                "{text:?}: a placeholder %{{ is not closed by }}; write %%{{ for a literal %{{"
            ));
        };
        if !literal.is_empty() {
            parts.push(Parsed::Text(std::mem::take(&mut literal)));
        }
        parts.push(Parsed::Name(rest[..end].trim().to_owned()));
        rest = &rest[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Parsed::Text(literal));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
