//! Live progress: one line per host with its current step on a terminal (indicatif), plain
//! `[host] step` lines otherwise (indicatif draws nothing when stderr is not a terminal).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bars: Option<(MultiProgress, BTreeMap<String, ProgressBar>)>,
}

impl Progress {
    pub fn new(hosts: &[String]) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bars: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = hosts.iter().map(String::len).max().unwrap_or(4);
        let style = ProgressStyle::with_template(&format!("{{spinner}} {{prefix:{width}}}  {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = hosts
            .iter()
            .map(|h| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(h.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                (h.clone(), bar)
            })
            .collect();
        Progress { bars: Some((multi, bars)) }
    }

    /// The step a host is on now.
    pub fn step(&self, host: &str, text: &str) {
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(host) {
                    bar.set_message(text.to_string());
                }
            }
            None => eprintln!("[{host}] {text}"),
        }
    }

    /// The host is done for this run; its line stays with `text`.
    pub fn finish(&self, host: &str, text: &str) {
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(host) {
                    bar.finish_with_message(text.to_string());
                }
            }
            None => eprintln!("[{host}] {text}"),
        }
    }

    pub fn clear(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.finish();
                }
            }
        }
    }
}
