//! Container names: docker's syntax, uniqueness through `names/<name>`
//! files created with `O_EXCL`, generated `adjective_surname` names, and
//! resolving what a user typed (name, full id or unique id prefix).

use std::io::Write;

use super::{ContainerError, Runtime, io_err};
use crate::id::ContainerId;

/// A validated container name: docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`
/// (a leading `/` as docker prints it is accepted and dropped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerName(String);

impl ContainerName {
    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self, ContainerError> {
        let n = s.strip_prefix('/').unwrap_or(s);
        let b = n.as_bytes();
        let ok = b.len() >= 2
            && b.len() <= 128
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
        if ok {
            Ok(Self(n.to_owned()))
        } else {
            Err(ContainerError::InvalidName { name: s.to_owned() })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContainerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// A subset of docker's namesgenerator lists (moby/pkg/namesgenerator).
const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];
const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "almeida",
    "archimedes",
    "ardinghelli",
    "aryabhata",
    "austin",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "benz",
    "bhabha",
    "bhaskara",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "boyd",
    "brahmagupta",
    "brattain",
    "brown",
    "carson",
    "chandrasekhar",
    "chaplygin",
    "chatelet",
    "chatterjee",
    "chebyshev",
    "clarke",
    "colden",
    "cori",
    "cray",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dirac",
    "driscoll",
    "dubinsky",
    "easley",
    "edison",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "gagarin",
    "galileo",
    "gates",
    "gauss",
    "germain",
    "goldberg",
    "goldstine",
    "goldwasser",
    "golick",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hellman",
    "hermann",
    "herschel",
    "hertz",
    "hodgkin",
    "hofstadter",
    "hoover",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kalam",
    "kapitsa",
    "kare",
    "keldysh",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "kirch",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lederberg",
    "lehmann",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "margulis",
    "matsumoto",
    "maxwell",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclean",
    "mcnulty",
    "meitner",
    "mendel",
    "merkle",
    "mirzakhani",
    "montalcini",
    "moore",
    "morse",
    "moser",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "robinson",
    "roentgen",
    "rosalind",
    "rubin",
    "saha",
    "sammet",
    "sanderson",
    "satoshi",
    "shamir",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "sinoussi",
    "snyder",
    "solomon",
    "spence",
    "stonebraker",
    "sutherland",
    "swanson",
    "swartz",
    "swirles",
    "taussig",
    "tesla",
    "tharp",
    "thompson",
    "torvalds",
    "tu",
    "turing",
    "varahamihira",
    "vaughan",
    "villani",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wilbur",
    "wiles",
    "williams",
    "williamson",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "wu",
    "yalow",
    "yonath",
    "zhukovsky",
];

impl Runtime {
    /// Makes `name` belong to `id`; docker's conflict error if another
    /// existing container has it. A name file whose owner is gone is taken over.
    pub fn claim_name(&self, name: &ContainerName, id: &ContainerId) -> Result<(), ContainerError> {
        let dir = self.layout.names_dir();
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let path = dir.join(name.as_str());
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    return f
                        .write_all(id.as_str().as_bytes())
                        .map_err(io_err("write", &path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match self.name_owner(name) {
                        Some(owner) if &owner == id => return Ok(()),
                        Some(owner) => {
                            return Err(ContainerError::NameInUse {
                                name: name.to_string(),
                                id: owner,
                            });
                        }
                        // Stale: the owner was removed without releasing it.
                        None => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(io_err("create", &path)(e)),
            }
        }
        Err(ContainerError::NameInUse {
            name: name.to_string(),
            id: self.name_owner(name).unwrap_or_else(|| id.clone()),
        })
    }

    /// Releases `name` if `id` owns it.
    pub fn release_name(&self, name: &str, id: &ContainerId) {
        let path = self.layout.names_dir().join(name);
        if ContainerName::parse(name).is_ok()
            && std::fs::read_to_string(&path).is_ok_and(|s| s == id.as_str())
        {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// The existing container owning `name`, if any.
    pub fn name_owner(&self, name: &ContainerName) -> Option<ContainerId> {
        let path = self.layout.names_dir().join(name.as_str());
        let id = ContainerId::parse(std::fs::read_to_string(path).ok()?.trim()).ok()?;
        self.layout
            .container_state(id.as_str())
            .exists()
            .then_some(id)
    }

    /// A free docker-style name (`adjective_surname`, with a digit suffix
    /// after collisions, as docker retries).
    pub fn generate_name(&self) -> Result<ContainerName, ContainerError> {
        let mut buf = [0u8; 8];
        for attempt in 0..20u32 {
            std::io::Read::read_exact(
                &mut std::fs::File::open("/dev/urandom")
                    .map_err(io_err("open", std::path::Path::new("/dev/urandom")))?,
                &mut buf,
            )
            .map_err(io_err("read", std::path::Path::new("/dev/urandom")))?;
            let r = u64::from_le_bytes(buf);
            let left = LEFT[(r % LEFT.len() as u64) as usize];
            let right = RIGHT[((r >> 32) % RIGHT.len() as u64) as usize];
            // docker: "boring_wozniak" is not generated (Steve Wozniak is not boring).
            if left == "boring" && right == "wozniak" {
                continue;
            }
            let mut n = format!("{left}_{right}");
            if attempt > 0 {
                n.push_str(&((r >> 16) % 10).to_string());
            }
            let name = ContainerName::parse(&n)?;
            if self.name_owner(&name).is_none() {
                return Ok(name);
            }
        }
        Err(ContainerError::InvalidName {
            name: "(generated)".to_owned(),
        })
    }

    /// What a user typed: a full id, a name, or a unique id prefix (in
    /// docker's order of precedence).
    pub fn resolve(&self, query: &str) -> Result<ContainerId, ContainerError> {
        let missing = || ContainerError::NoSuchContainer {
            query: query.to_owned(),
        };
        if let Ok(id) = ContainerId::parse(query)
            && self.layout.container_state(id.as_str()).exists()
        {
            return Ok(id);
        }
        if let Ok(name) = ContainerName::parse(query)
            && let Some(id) = self.name_owner(&name)
        {
            return Ok(id);
        }
        if query.is_empty() || !query.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let mut found: Option<ContainerId> = None;
        for s in self.list_ids()? {
            if s.as_str().starts_with(query) {
                if found.is_some() {
                    return Err(ContainerError::AmbiguousPrefix {
                        prefix: query.to_owned(),
                    });
                }
                found = Some(s);
            }
        }
        found.ok_or_else(missing)
    }

    /// The ids of all containers (no state is read).
    pub fn list_ids(&self) -> Result<Vec<ContainerId>, ContainerError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.layout.containers_dir()];
        dirs.extend(self.layout.ephemeral_containers_dir());
        for dir in dirs {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for e in rd {
                let e = e.map_err(io_err("list", &dir))?;
                if let Some(id) = e
                    .file_name()
                    .to_str()
                    .and_then(|s| ContainerId::parse(s).ok())
                    && e.path().join("state.json").exists()
                {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_syntax() {
        for ok in ["web", "a1", "my_app.v2-x", "/web"] {
            assert!(ContainerName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(ContainerName::parse("/web").unwrap().as_str(), "web");
        for bad in ["", "a", "-x", "_x", "a b", "a/b", "é1", "../x"] {
            let e = ContainerName::parse(bad).unwrap_err();
            assert!(e.to_string().contains("Invalid container name"), "{bad}");
        }
    }

    #[test]
    fn names_are_unique_and_prefixes_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::with_cgroups(
            dir.path(),
            Box::new(crate::cgroups::CgroupV2::new(dir.path().join("cg"))),
        )
        .unwrap();
        let a = ContainerId::parse(&format!("abc1{}", "0".repeat(60))).unwrap();
        let b = ContainerId::parse(&format!("abc2{}", "0".repeat(60))).unwrap();
        for id in [&a, &b] {
            let d = dir.path().join("containers").join(id.as_str());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("state.json"), b"{}").unwrap();
        }
        let web = ContainerName::parse("web").unwrap();
        rt.claim_name(&web, &a).unwrap();
        rt.claim_name(&web, &a).unwrap();
        let e = rt.claim_name(&web, &b).unwrap_err().to_string();
        assert!(
            e.contains("The container name \"/web\" is already in use by container")
                && e.contains(a.as_str()),
            "{e}"
        );
        assert_eq!(rt.resolve("web").unwrap(), a);
        assert_eq!(rt.resolve(a.as_str()).unwrap(), a);
        assert_eq!(rt.resolve("abc2").unwrap(), b);
        assert!(matches!(
            rt.resolve("abc"),
            Err(ContainerError::AmbiguousPrefix { .. })
        ));
        assert!(matches!(
            rt.resolve("nope"),
            Err(ContainerError::NoSuchContainer { .. })
        ));
        // Releasing by a non-owner does nothing; the owner's release frees it.
        rt.release_name("web", &b);
        assert_eq!(rt.name_owner(&web), Some(a.clone()));
        rt.release_name("web", &a);
        rt.claim_name(&web, &b).unwrap();
        // A name whose owner is gone is taken over.
        std::fs::remove_dir_all(dir.path().join("containers").join(b.as_str())).unwrap();
        rt.claim_name(&web, &a).unwrap();
        let g = rt.generate_name().unwrap();
        assert!(g.as_str().contains('_'), "{g}");
    }
}
