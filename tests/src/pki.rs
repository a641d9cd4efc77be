//! Test certificates made with the `openssl` command, and mosquitto password files made with
//! `mosquitto_passwd`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A throw-away public key infrastructure in a temporary directory:
///
/// * `ca.crt`: the CA the tests trust;
/// * `server.crt`/`server.key`: signed by that CA for `127.0.0.1` (IP SAN) and `localhost`;
/// * `client.crt`/`client.key`: a client certificate (CN `line-client`) signed by that CA;
/// * `other-ca.crt`: a second, unrelated CA (a client trusting it must refuse the server);
/// * `elsewhere.crt`/`elsewhere.key`: signed by the right CA, but for `broker.elsewhere.test`
///   only (a client connecting to 127.0.0.1 must refuse it).
///
/// Keys are ECDSA P-256; certificates are valid for two days. Every file is world-readable,
/// because mosquitto started as root reads them as the `mosquitto` user.
pub struct Pki {
    dir: tempfile::TempDir,
}

/// The common name of the client certificate (the user name when the broker says
/// `use_identity_as_username true`).
pub const CLIENT_CN: &str = "line-client";

impl Pki {
    /// Generates every file listed on [`Pki`]. Panics with openssl's output when a step fails.
    pub fn generate() -> Pki {
        let pki = Pki::empty();
        pki.make_ca("ca", "mqtt-line test CA");
        pki.make_ca("other-ca", "mqtt-line unrelated CA");
        pki.make_server();
        pki.make_leaf(
            "elsewhere",
            "broker.elsewhere.test",
            "subjectAltName=DNS:broker.elsewhere.test\nextendedKeyUsage=serverAuth\n",
        );
        pki.make_leaf(
            "client",
            CLIENT_CN,
            "subjectAltName=DNS:line-client\nextendedKeyUsage=clientAuth\n",
        );
        pki.open_up();
        pki
    }

    /// Certificates made the way mosquitto's TLS documentation (mosquitto-tls(7)) makes them,
    /// as integrators do, plus unusable variants of the client's files:
    ///
    /// * `ca.crt`/`ca.key`: `openssl req -new -x509 -days N -extensions v3_ca`;
    /// * `client.key`: `openssl genrsa 2048` (RSA, unencrypted: the recipe's variant without
    ///   `-des3`); `client.csr`: `openssl req -new`; `client.crt`: `openssl x509 -req -CA ca.crt
    ///   -CAkey ca.key -CAcreateserial -days N` without an extensions file, which OpenSSL 3.0
    ///   makes an X.509 **v1** certificate (CN [`CLIENT_CN`]);
    /// * `server.crt`/`server.key`: signed by that CA like [`Pki::generate`]'s, with the
    ///   subjectAltNames every current TLS client needs (the recipe's CN-only v1 server
    ///   certificate is refused by them);
    /// * `recipe-server.crt`/`recipe-server.key`: that CN-only v1 server certificate (CN
    ///   `localhost`), exactly by the recipe;
    /// * `expired.crt`: the client's request signed with `-days -1`;
    /// * `encrypted.key`: `openssl genrsa -aes256` (PKCS#8 `ENCRYPTED PRIVATE KEY`);
    ///   `encrypted-legacy.key`: `-traditional -des3` (`Proc-Type: 4,ENCRYPTED`), the recipe's;
    /// * `other.key`: an unrelated RSA key; `client.der`: `client.crt` in binary DER;
    /// * `garbage.crt`: a PEM `CERTIFICATE` section whose content is not a certificate.
    pub fn mosquitto_recipe() -> Pki {
        let pki = Pki::empty();
        pki.openssl(&[
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-extensions",
            "v3_ca",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=mosquitto recipe CA",
        ]);
        pki.openssl(&["genrsa", "-out", "client.key", "2048"]);
        pki.openssl(&[
            "req",
            "-out",
            "client.csr",
            "-key",
            "client.key",
            "-new",
            "-subj",
            &format!("/CN={CLIENT_CN}"),
        ]);
        pki.sign_request("client.csr", "client.crt", "2");
        pki.make_server();
        // The server exactly by the recipe: CN only, no extensions.
        pki.openssl(&["genrsa", "-out", "recipe-server.key", "2048"]);
        pki.openssl(&[
            "req",
            "-out",
            "recipe-server.csr",
            "-key",
            "recipe-server.key",
            "-new",
            "-subj",
            "/CN=localhost",
        ]);
        pki.sign_request("recipe-server.csr", "recipe-server.crt", "2");
        pki.sign_request("client.csr", "expired.crt", "-1");
        let pass = "pass:not-asked-for";
        pki.openssl(&[
            "genrsa",
            "-aes256",
            "-passout",
            pass,
            "-out",
            "encrypted.key",
            "2048",
        ]);
        pki.openssl(&[
            "genrsa",
            "-traditional",
            "-des3",
            "-passout",
            pass,
            "-out",
            "encrypted-legacy.key",
            "2048",
        ]);
        pki.openssl(&["genrsa", "-out", "other.key", "2048"]);
        pki.openssl(&[
            "x509",
            "-in",
            "client.crt",
            "-outform",
            "der",
            "-out",
            "client.der",
        ]);
        pki.write(
            "garbage.crt",
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        );
        pki.open_up();
        pki
    }

    fn empty() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("mqtt-line-pki-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        Pki { dir }
    }

    /// The X.509 version line of a certificate as `openssl x509 -text` prints it
    /// (`Version: 1 (0x0)`).
    pub fn version_line(&self, cert: &str) -> String {
        let text = self.openssl(&["x509", "-in", cert, "-noout", "-text"]);
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with("Version:"))
            .unwrap_or("no version line")
            .to_string()
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file of the directory by name (`ca.crt`, `server.key`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The path as text, for configuration files.
    pub fn path_text(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The lines of a mosquitto TLS listener serving `cert` and `key` (names in this directory)
    /// and trusting `ca.crt` for client certificates, for [`MosquittoBuilder::listener`].
    ///
    /// [`MosquittoBuilder::listener`]: crate::MosquittoBuilder::listener
    pub fn tls_listener_lines(&self, cert: &str, key: &str) -> Vec<String> {
        vec![
            format!("cafile {}", self.path_text("ca.crt")),
            format!("certfile {}", self.path_text(cert)),
            format!("keyfile {}", self.path_text(key)),
        ]
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.path(name), contents)
            .unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
    }

    /// Runs `openssl` in the directory and returns its standard output.
    fn openssl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `openssl`: {e} (install the `openssl` package; .ci/run does)")
            });
        if !out.status.success() {
            panic!(
                "`openssl {}` failed ({})\n-- stdout --\n{}\n-- stderr --\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn make_server(&self) {
        self.make_leaf(
            "server",
            "localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
    }

    /// Signs a request with `ca.key` the recipe's way: no extensions file.
    fn sign_request(&self, csr: &str, crt: &str, days: &str) {
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            crt,
            "-days",
            days,
        ]);
    }

    fn make_ca(&self, name: &str, cn: &str) {
        let key = format!("{name}.key");
        let crt = format!("{name}.crt");
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    /// A key and a certificate signed by `ca` with the extensions of `ext` (one per line).
    fn make_leaf(&self, name: &str, cn: &str, ext: &str) {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let ext_file = format!("{name}.ext");
        let ext = format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n{ext}"
        );
        self.write(&ext_file, &ext);
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            // ca.srl: a random first serial number, one more for each certificate.
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext_file,
            "-out",
            &crt,
        ]);
    }

    fn open_up(&self) {
        set_mode(self.dir.path(), 0o755);
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for entry in entries.flatten() {
                set_mode(&entry.path(), 0o644);
            }
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        panic!("cannot chmod {}: {e}", path.display());
    }
}

/// The contents of a mosquitto `password_file` with one user, hashed by `mosquitto_passwd -b`.
pub fn mosquitto_password_file(user: &str, password: &str) -> String {
    let dir = tempfile::Builder::new()
        .prefix("mqtt-line-passwd-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let path = dir.path().join("passwd");
    std::fs::write(&path, "").unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    let out = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg(&path)
        .arg(user)
        .arg(password)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `mosquitto_passwd`: {e} (package `mosquitto`)"));
    if !out.status.success() {
        panic!(
            "`mosquitto_passwd -b` failed ({})\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
