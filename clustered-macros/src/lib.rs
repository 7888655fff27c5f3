//! `#[clustered::main]`: turns `async fn main` into a `main` that builds the tokio runtime this
//! process's role in the cluster wants and runs the body on it (`clustered::runtime`): one
//! thread in the master and, by default, one serving thread per worker (Node's model; the
//! parallelism is the processes). Re-exported by the `clustered` crate; the expansion names
//! `::clustered::runtime`, so the program depends on `clustered` under that name.
//!
//! Written without `syn`/`quote`: the only work is to drop `async` before `fn` and wrap the
//! body, which `proc_macro` alone does in a few lines (and keeps the build light).

#![forbid(unsafe_code)]

use proc_macro::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};

/// Runs `async fn main` on the runtime its role in the cluster wants.
///
/// `#[clustered::main]` gives every worker one serving thread (`current_thread`), or
/// `CLUSTER_WORKER_THREADS` threads when that is set; `#[clustered::main(worker_threads = 4)]`
/// sets the number in code. The master always runs on one thread.
///
/// ```ignore
/// #[clustered::main]
/// async fn main() -> clustered::Exit {
///     clustered::Cluster::new().serve("127.0.0.1:3000", app()).await.into()
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(&args.to_string(), item) {
        Ok(expanded) => expanded,
        Err(message) => format!("::core::compile_error!({message:?});")
            .parse()
            .unwrap_or_default(),
    }
}

fn expand(args: &str, item: TokenStream) -> Result<TokenStream, String> {
    let runtime = runtime_expression(args)?;
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let body = match tokens.pop() {
        Some(TokenTree::Group(body)) if body.delimiter() == Delimiter::Brace => body,
        _ => return Err("#[clustered::main] goes on `async fn main() { ... }`".into()),
    };
    let is_ident = |token: &TokenTree, name: &str| matches!(token, TokenTree::Ident(ident) if ident.to_string() == name);
    let fn_at = tokens.iter().position(|token| is_ident(token, "fn"));
    match fn_at {
        Some(at) if at > 0 && is_ident(&tokens[at - 1], "async") => {
            tokens.remove(at - 1);
        }
        _ => return Err("#[clustered::main] needs an `async fn`".into()),
    }
    let span = Span::call_site();
    let future = TokenStream::from_iter([
        TokenTree::Ident(Ident::new("async", span)),
        TokenTree::Ident(Ident::new("move", span)),
        TokenTree::Group(body),
    ]);
    let mut call: TokenStream = format!("{runtime}.block_on")
        .parse()
        .map_err(|_| "cannot build the runtime expression".to_owned())?;
    call.extend([TokenTree::Group(Group::new(Delimiter::Parenthesis, future))]);
    tokens.push(TokenTree::Group(Group::new(Delimiter::Brace, call)));
    Ok(TokenStream::from_iter(tokens))
}

/// `::clustered::runtime::Runtime::new()`, with `.worker_threads(N)` for `worker_threads = N`.
fn runtime_expression(args: &str) -> Result<String, String> {
    let base = "::clustered::runtime::Runtime::new()";
    if args.trim().is_empty() {
        return Ok(base.to_owned());
    }
    let usage = "expected `#[clustered::main]` or `#[clustered::main(worker_threads = N)]`";
    let (name, value) = args.split_once('=').ok_or(usage)?;
    if name.trim() != "worker_threads" {
        return Err(usage.into());
    }
    let threads: usize = value.trim().parse().map_err(|_| usage.to_owned())?;
    if threads == 0 {
        return Err("worker_threads must be at least 1".into());
    }
    Ok(format!("{base}.worker_threads({threads})"))
}

#[cfg(test)]
mod tests {
    use super::runtime_expression;

    #[test]
    fn the_runtime_takes_worker_threads_or_nothing() {
        assert_eq!(
            runtime_expression(" ").unwrap(),
            "::clustered::runtime::Runtime::new()"
        );
        assert_eq!(
            runtime_expression("worker_threads = 4").unwrap(),
            "::clustered::runtime::Runtime::new().worker_threads(4)"
        );
        for wrong in [
            "flavor = \"multi_thread\"",
            "worker_threads",
            "worker_threads = x",
        ] {
            assert!(
                runtime_expression(wrong).unwrap_err().contains("expected"),
                "{wrong}"
            );
        }
        assert!(runtime_expression("worker_threads = 0").is_err());
    }
}
