//! The structural check that runs before the typed parse: every mapping key in the file is
//! compared with the keys its place allows, so every misspelt key is reported in one pass, each
//! with its line and a "did you mean" when a known key is close. The typed parse alone would
//! stop at the first one.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::error::InventoryError;
use super::model::{
    AptSection, ClusterSection, DockerSection, ExposeEntry, HostEntry, ImagesSection, InventoryFile,
    NetworkEntry, NfsSection, OpenstackBastion, OpenstackRoleFrom, OpenstackSection, OpenstackSelect,
    ScalarString, SecretEntry, SshSection, StackEntry, StorageSection, SwarmSection, VolumeEntry,
};

/// The file as a tree of mappings and lists, keys with their positions; scalars are not kept.
pub enum Node {
    Map(Vec<(Spanned<ScalarString>, Node)>),
    List(Vec<Node>),
    Scalar,
}

/// Every unknown key of the file, in file order.
pub fn check(path: &Path, root: &Node) -> Vec<InventoryError> {
    let mut errors = Vec::new();
    walk(path, root, "", &mut errors);
    errors
}

fn walk(path: &Path, node: &Node, at: &str, errors: &mut Vec<InventoryError>) {
    match node {
        Node::Map(entries) => {
            let allowed = allowed_keys(at);
            for (key, child) in entries {
                let name = key.value.0.as_str();
                if let Some(allowed) = allowed
                    && !allowed.contains(&name)
                {
                    let place =
                        if at.is_empty() { "at the top level".to_string() } else { format!("in `{at}`") };
                    let hint = match closest(name, allowed) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("known keys: {}", allowed.join(", ")),
                    };
                    errors.push(InventoryError::at(
                        path,
                        &key.referenced,
                        format!("unknown key `{name}` {place}: {hint}"),
                    ));
                    continue;
                }
                let child_at = if at.is_empty() { name.to_string() } else { format!("{at}.{name}") };
                walk(path, child, &child_at, errors);
            }
        }
        Node::List(items) => {
            for item in items {
                walk(path, item, &format!("{at}[]"), errors);
            }
        }
        Node::Scalar => {}
    }
}

/// The keys a mapping at `at` may have; None where keys are the user's own (`vars`, `labels`).
fn allowed_keys(at: &str) -> Option<&'static [&'static str]> {
    Some(match at {
        "" => field_names::<InventoryFile>(),
        "cluster" => field_names::<ClusterSection>(),
        "ssh" | "hosts[].ssh" | "openstack.ssh" => field_names::<SshSection>(),
        "docker" => field_names::<DockerSection>(),
        "swarm" => field_names::<SwarmSection>(),
        "apt" => field_names::<AptSection>(),
        "hosts[]" => field_names::<HostEntry>(),
        "storage" => field_names::<StorageSection>(),
        "storage.nfs" => field_names::<NfsSection>(),
        "networks[]" => field_names::<NetworkEntry>(),
        "stacks[]" => field_names::<StackEntry>(),
        "stacks[].expose[]" => field_names::<ExposeEntry>(),
        "secrets[]" => field_names::<SecretEntry>(),
        "images" => field_names::<ImagesSection>(),
        "volumes[]" => field_names::<VolumeEntry>(),
        "openstack" => field_names::<OpenstackSection>(),
        "openstack.select" => field_names::<OpenstackSelect>(),
        "openstack.role_from" => field_names::<OpenstackRoleFrom>(),
        "openstack.bastion" => field_names::<OpenstackBastion>(),
        _ => return None,
    })
}

/// The nearest known key within a small edit distance (a typo, not another word).
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`: `prot` is one from
/// `port`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The field names serde's derive gives a struct, read by asking it to deserialize itself
/// from a deserializer that only records them: the key lists cannot drift from the model.
fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut names = None;
    let _ = T::deserialize(FieldNames(&mut names));
    names.unwrap_or(&[])
}

struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only struct field names are read"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("field names read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Spanned<ScalarString>, Node>()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(text: &str) -> Vec<String> {
        let tree: Node = serde_saphyr::from_str(text).unwrap();
        check(Path::new("/inv/k.yml"), &tree).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn field_names_come_from_the_model() {
        assert!(field_names::<HostEntry>().contains(&"advertise_address"));
        assert!(field_names::<InventoryFile>().contains(&"stacks"));
    }

    #[test]
    fn every_misspelt_key_is_reported_at_once_with_a_suggestion() {
        let errors = unknown(
            "cluster: {name: k}\nsssh: {user: admin}\nhosts:\n  - name: m1\n    adress: 10.0.0.1\n    role: [manager]\n",
        );
        assert_eq!(
            errors,
            [
                "/inv/k.yml:2:1: unknown key `sssh` at the top level: did you mean `ssh`?",
                "/inv/k.yml:5:5: unknown key `adress` in `hosts[]`: did you mean `address`?",
                "/inv/k.yml:6:5: unknown key `role` in `hosts[]`: did you mean `roles`?",
            ]
        );
    }

    #[test]
    fn nested_sections_and_free_form_maps() {
        let errors = unknown(
            "cluster: {name: k}\nhosts: [{name: m1, address: a, ssh: {usr: x}, labels: {anything: 1}}]\n\
             stacks: [{name: s, template: t, vars: {whatever: 1}, expose: [{service: w, host: h, prot: 80}]}]\n\
             storage: {nfs: {server: n, path: /p, zzzzzz: 1}}\n",
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("`usr` in `hosts[].ssh`: did you mean `user`?"), "{}", errors[0]);
        assert!(errors[1].contains("`prot` in `stacks[].expose[]`: did you mean `port`?"), "{}", errors[1]);
        assert!(
            errors[2].contains("`zzzzzz` in `storage.nfs`: known keys: server, path, managed"),
            "{}",
            errors[2]
        );
    }

    #[test]
    fn the_openstack_source_and_its_subsections() {
        let errors = unknown(
            &[
                "cluster: {name: k}",
                "openstack:",
                "  clod: c",
                "  select: {name_prefx: s, metadata: {anything: 1}}",
                "  role_from: {metdata: role}",
                "  network: n",
                "  bastion: {sever: b}",
                "  ssh: {usr: x}",
            ]
            .join("\n"),
        );
        let wanted = [
            "`clod` in `openstack`: did you mean `cloud`?",
            "`name_prefx` in `openstack.select`: did you mean `name_prefix`?",
            "`metdata` in `openstack.role_from`: did you mean `metadata`?",
            "`sever` in `openstack.bastion`: did you mean `server`?",
            "`usr` in `openstack.ssh`: did you mean `user`?",
        ];
        assert_eq!(errors.len(), wanted.len(), "{errors:?}");
        for (error, wanted) in errors.iter().zip(wanted) {
            assert!(error.contains(wanted), "{error}");
        }
    }
}
