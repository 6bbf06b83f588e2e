//! Image archives for clusters without a registry: which images a `docker save` archive
//! holds, read from its `manifest.json` (a plain tar; no tar library needed for that).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

/// The image references (`RepoTags`) in a `docker save` archive.
pub fn images_in_archive(path: &Path) -> Result<Vec<String>> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let manifest = read_tar_member(&mut file, "manifest.json")
        .with_context(|| format!("{} is not a `docker save` archive", path.display()))?;
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(&manifest).with_context(|| format!("{}: manifest.json", path.display()))?;
    let tags: Vec<String> = entries
        .iter()
        .flat_map(|e| e["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    if tags.is_empty() {
        bail!(
            "{}: the archive's images have no tags; save them by name (docker save NAME:TAG)",
            path.display()
        );
    }
    Ok(tags)
}

fn read_tar_member(reader: &mut impl Read, wanted: &str) -> Result<Vec<u8>> {
    let mut header = [0u8; 512];
    loop {
        reader.read_exact(&mut header).map_err(|_| anyhow!("no {wanted} in the archive"))?;
        if header.iter().all(|b| *b == 0) {
            bail!("no {wanted} in the archive");
        }
        let name = field(&header[0..100]);
        let size_text = field(&header[124..136]);
        let size = u64::from_str_radix(size_text.trim(), 8).map_err(|_| anyhow!("not a tar archive"))?;
        let padded = size.div_ceil(512) * 512;
        if name.trim_start_matches("./") == wanted {
            let mut data = vec![0u8; size as usize];
            reader.read_exact(&mut data)?;
            return Ok(data);
        }
        std::io::copy(&mut reader.by_ref().take(padded), &mut std::io::sink())?;
    }
}

fn field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{:011o}\0", data.len());
        header[124..136].copy_from_slice(size.as_bytes());
        header[156] = b'0';
        let mut out = header.to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    #[test]
    fn reads_repo_tags_from_the_manifest() {
        let mut tar = tar_member("abc/layer.tar", &[7u8; 1000]);
        tar.extend(tar_member(
            "manifest.json",
            br#"[{"Config":"x.json","RepoTags":["app:1","app:latest"],"Layers":[]}]"#,
        ));
        tar.extend([0u8; 1024]);
        let path = std::env::temp_dir().join(format!("clusterup-img-{}.tar", std::process::id()));
        std::fs::write(&path, &tar).unwrap();
        assert_eq!(images_in_archive(&path).unwrap(), ["app:1", "app:latest"]);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(
            format!("{:#}", images_in_archive(&path).unwrap_err()).contains("not a `docker save` archive")
        );
    }
}
