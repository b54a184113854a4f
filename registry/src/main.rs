//! `bay-registry`: run the registry server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use bay_registry::config::Config;

#[derive(Parser)]
#[command(
    name = "bay-registry",
    version,
    about = "An OCI registry with built-in content trust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve(ServeArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage personal access tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage access rules.
    #[command(subcommand)]
    Acl(AclCmd),
    /// Delete blobs no manifest uses (online: safe while the registry serves).
    Gc {
        /// Report what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Nothing younger than this is collected (protects in-flight pushes).
        #[arg(long, default_value = "1h")]
        grace: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Where the data lives, for admin commands.
#[derive(clap::Args)]
struct DataArgs {
    /// TOML configuration file.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Data root (overrides the config).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user.
    Add {
        /// Login name.
        name: String,
        /// Grant every right, including the catalog.
        #[arg(long)]
        admin: bool,
        /// Group memberships (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Delete a user and all its tokens.
    Del {
        /// Login name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke every refresh token (login session, docker identitytoken) of a user.
    Logout {
        /// Login name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change a password (revokes the user's refresh tokens).
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a personal access token; the secret is printed once.
    Create {
        /// Owner.
        #[arg(long)]
        user: String,
        /// Scope it is limited to, e.g. 'repository:team/*:pull' (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Lifetime, e.g. 30d, 12h (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
        /// A label.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id (the part after bay_pat_).
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum AclCmd {
    /// Grant actions on a repository pattern.
    Add {
        /// To a user.
        #[arg(long, conflicts_with_all = ["group", "anonymous"])]
        user: Option<String>,
        /// To a group.
        #[arg(long, conflicts_with = "anonymous")]
        group: Option<String>,
        /// To requests without credentials.
        #[arg(long)]
        anonymous: bool,
        /// Repository pattern: team/app, team/*, team/**.
        #[arg(long)]
        repo: String,
        /// Comma-separated actions: pull,push,delete or *.
        #[arg(long, value_delimiter = ',')]
        actions: Vec<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List rules.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a rule by id.
    Del {
        /// Rule id.
        id: i64,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn data_root(d: &DataArgs) -> anyhow::Result<PathBuf> {
    let cfg = Config::load(d.config.as_deref()).context("loading configuration")?;
    Ok(d.root.clone().unwrap_or(cfg.storage.root))
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_line(&mut s)
            .context("reading the password from stdin")?;
        return Ok(s.trim_end_matches(['\n', '\r']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to ask for a password: use --password-stdin");
    }
    let a = rpassword::prompt_password("Password: ").context("reading the password")?;
    let b = rpassword::prompt_password("Repeat password: ").context("reading the password")?;
    if a != b {
        anyhow::bail!("the passwords do not match");
    }
    Ok(a)
}

fn when(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

async fn admin(cmd: Command) -> anyhow::Result<()> {
    use bay_registry::admin as a;
    use bay_registry::meta::RuleSubject;
    match cmd {
        Command::Serve(args) => serve(args).await?,
        Command::Gc {
            dry_run,
            grace,
            data,
        } => {
            let root = data_root(&data)?;
            let secs = a::parse_duration_secs(&grace)?;
            let meta = a::open(&root).await?;
            let blobs = bay_registry::storage::BlobStore::local(&root)?;
            let opts = bay_registry::gc::Options {
                grace: std::time::Duration::from_secs(secs as u64),
                dry_run,
            };
            let r = bay_registry::gc::run(&meta, &blobs, opts).await?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for (repo, d) in &r.links {
                println!("{verb} link {repo} -> {d}");
            }
            for (d, size) in r.blobs.iter().chain(&r.strays) {
                println!("{verb} blob {d} ({size} bytes)");
            }
            println!(
                "{verb} {} links and {} blobs, {} bytes",
                r.links.len(),
                r.blobs.len() + r.strays.len(),
                r.bytes()
            );
        }
        Command::User(u) => match u {
            UserCmd::Add {
                name,
                admin,
                groups,
                password_stdin,
                data,
            } => {
                let pw = read_password(password_stdin)?;
                let meta = a::open(&data_root(&data)?).await?;
                a::user_add(&meta, &name, &pw, admin, &groups).await?;
                println!("user {name} created{}", if admin { " (admin)" } else { "" });
            }
            UserCmd::Del { name, data } => {
                let meta = a::open(&data_root(&data)?).await?;
                a::user_del(&meta, &name).await?;
                println!("user {name} deleted, with its tokens");
            }
            UserCmd::List { data } => {
                let meta = a::open(&data_root(&data)?).await?;
                println!("{:<24} {:<6} GROUPS", "NAME", "ADMIN");
                for u in a::user_list(&meta).await? {
                    println!(
                        "{:<24} {:<6} {}",
                        u.name,
                        if u.admin { "yes" } else { "no" },
                        u.groups.join(",")
                    );
                }
            }
            UserCmd::Logout { name, data } => {
                let meta = a::open(&data_root(&data)?).await?;
                let n = a::user_logout(&meta, &name).await?;
                println!("revoked {n} login sessions of {name}");
            }
            UserCmd::Passwd {
                name,
                password_stdin,
                data,
            } => {
                let pw = read_password(password_stdin)?;
                let meta = a::open(&data_root(&data)?).await?;
                a::user_passwd(&meta, &name, &pw).await?;
                println!("password of {name} changed; its refresh tokens are revoked");
            }
        },
        Command::Token(t) => match t {
            TokenCmd::Create {
                user,
                scopes,
                expires,
                name,
                data,
            } => {
                let secs = expires.as_deref().map(a::parse_duration_secs).transpose()?;
                let meta = a::open(&data_root(&data)?).await?;
                let (rec, secret) = a::token_create(&meta, &user, &name, &scopes, secs).await?;
                eprintln!(
                    "token {} for {user} (expires {}); this secret is shown only once:",
                    rec.id,
                    when(rec.expires_at)
                );
                println!("{secret}");
            }
            TokenCmd::List { user, data } => {
                let meta = a::open(&data_root(&data)?).await?;
                println!(
                    "{:<14} {:<16} {:<16} {:<16} {:<16} {:<8} SCOPES",
                    "ID", "USER", "NAME", "CREATED", "EXPIRES", "STATE"
                );
                for t in a::token_list(&meta, user.as_deref()).await? {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else if t
                        .expires_at
                        .is_some_and(|e| e <= chrono::Utc::now().timestamp())
                    {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<14} {:<16} {:<16} {:<16} {:<16} {:<8} {}",
                        t.id,
                        t.user,
                        t.name,
                        when(Some(t.created_at)),
                        when(t.expires_at),
                        state,
                        t.scopes.join(" ")
                    );
                }
            }
            TokenCmd::Revoke { id, data } => {
                let meta = a::open(&data_root(&data)?).await?;
                a::token_revoke(&meta, &id, None).await?;
                println!("token {id} revoked");
            }
        },
        Command::Acl(c) => match c {
            AclCmd::Add {
                user,
                group,
                anonymous,
                repo,
                actions,
                data,
            } => {
                let subject = match (user, group, anonymous) {
                    (Some(u), None, false) => RuleSubject::User(u),
                    (None, Some(g), false) => RuleSubject::Group(g),
                    (None, None, true) => RuleSubject::Anonymous,
                    _ => anyhow::bail!("name exactly one of --user, --group or --anonymous"),
                };
                let meta = a::open(&data_root(&data)?).await?;
                let id = a::acl_add(&meta, subject, &repo, &actions).await?;
                println!("rule {id} added");
            }
            AclCmd::List { data } => {
                let meta = a::open(&data_root(&data)?).await?;
                println!(
                    "{:<6} {:<24} {:<32} ACTIONS",
                    "ID", "SUBJECT", "REPOSITORIES"
                );
                for r in a::acl_list(&meta).await? {
                    let who = match &r.subject {
                        RuleSubject::User(u) => format!("user:{u}"),
                        RuleSubject::Group(g) => format!("group:{g}"),
                        RuleSubject::Anonymous => "anonymous".into(),
                    };
                    println!(
                        "{:<6} {:<24} {:<32} {}",
                        r.id,
                        who,
                        r.pattern,
                        r.actions.join(",")
                    );
                }
            }
            AclCmd::Del { id, data } => {
                let meta = a::open(&data_root(&data)?).await?;
                a::acl_del(&meta, id).await?;
                println!("rule {id} removed");
            }
        },
    }
    Ok(())
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file (optional; defaults need none).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:5000.
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
    /// Data root (database, blobs, uploads).
    #[arg(long)]
    root: Option<PathBuf>,
    /// PEM certificate chain (enables TLS with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn init_tracing(cfg: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = Config::load(args.config.as_deref()).context("loading configuration")?;
    if let Some(a) = args.addr {
        cfg.server.addr = a;
    }
    if let Some(r) = args.root {
        cfg.storage.root = r;
    }
    if args.tls_cert.is_some() {
        cfg.server.tls_cert = args.tls_cert;
        cfg.server.tls_key = args.tls_key;
    }
    init_tracing(&cfg);
    let addr = cfg.server.addr;
    let tls = cfg.server.tls_cert.is_some();
    let root = cfg.storage.root.clone();
    let registry = bay_registry::Registry::open(cfg)
        .await
        .with_context(|| format!("opening data root {}", root.display()))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(addr = %local, tls, root = %root.display(), "bay-registry listening");
    registry
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => rt.block_on(serve(args)),
        other => {
            // Audit lines of admin commands go to stderr.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| EnvFilter::new("warn,audit=info")),
                )
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .try_init();
            rt.block_on(admin(other))
        }
    }
}
