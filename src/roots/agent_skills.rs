//! The agent-neutral skills folder (`~/.agents/skills`, the open agent-skills standard's
//! place, which Codex reads next to `~/.codex/skills`): all of it is taken.

use super::{LocalSkills, MergeRules, Place, Root, Rule, include};

/// The agent skills root.
pub const ROOT: Root = Root {
    name: "agents-skills",
    place: Place::Home(".agents/skills"),
    shown: "~/.agents/skills",
    about: "user skills every agent reads (Codex reports them with scope `user`)",
    required: false,
    selection: SELECTION,
    notice_unlisted: false,
    secrets: &[],
    merge: MergeRules {
        config: None,
        hooks: None,
        config_layers: None,
        local_skills: Some(LocalSkills {
            overlay: crate::paths::state::LOCAL_AGENT_SKILLS,
            into: "",
        }),
        overrides: None,
        policies: &[],
    },
};

/// Everything: each entry is a skill folder.
pub const SELECTION: &[Rule] = &[include("*", "skills")];
