//! The `multi-casskop` binary.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use multi_casskop::cli::{Cli, Command};
use multi_casskop::{crd, render};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match crd::multicasskop_crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("cannot serialise the CRD: {e}")),
        },
        Command::Render { file, sites } => {
            let name = file.display().to_string();
            let manifest = if name == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map(|_| s)
            } else {
                std::fs::read_to_string(&file)
            };
            let manifest = match manifest {
                Ok(m) => m,
                Err(e) => return fail(&format!("cannot read {name}: {e}")),
            };
            match render::render(&name, &manifest, &sites) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("multi-casskop: {message}");
    ExitCode::FAILURE
}
