//! The `#[retry]` attribute of [reflexio](https://docs.rs/reflexio).
//!
//! Use it through reflexio's `macros` feature, as `#[reflexio::retry]`;
//! the documentation is on the re-export there.

use proc_macro::TokenStream;
use proc_macro2::TokenTree;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, ItemFn, LitStr, Pat, ReturnType, Token, Type};

/// Retries the function's body under a reflexio policy; see
/// `reflexio::retry` (the attribute) for the documentation.
#[proc_macro_attribute]
pub fn retry(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // The function stays as written beside the error, so that its
        // callers do not add errors of their own.
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item).into()
        }
    }
}

/// The attribute's arguments.
#[derive(Default)]
struct Options {
    policy: Option<Expr>,
    operation: Option<LitStr>,
}

const KEYS: &str = "expected `policy = EXPR` or `operation = \"name\"`";

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options::default();
        let pairs = Punctuated::<KeyValue, Token![,]>::parse_terminated(input)?;
        for pair in pairs {
            let duplicate = || {
                syn::Error::new(
                    pair.key.span(),
                    format!("`{}` is given twice in #[retry(..)]", pair.key),
                )
            };
            match pair.key.to_string().as_str() {
                "policy" => {
                    if options.policy.is_some() {
                        return Err(duplicate());
                    }
                    options.policy = Some(pair.value);
                }
                "operation" => {
                    if options.operation.is_some() {
                        return Err(duplicate());
                    }
                    match pair.value {
                        Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(name),
                            ..
                        }) => options.operation = Some(name),
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "`operation` takes a string literal: #[retry(operation = \"fetch_user\")]",
                            ))
                        }
                    }
                }
                other => {
                    return Err(syn::Error::new(
                        pair.key.span(),
                        format!("unknown key `{other}` in #[retry(..)]: {KEYS}"),
                    ))
                }
            }
        }
        Ok(options)
    }
}

struct KeyValue {
    key: Ident,
    value: Expr,
}

impl Parse for KeyValue {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{key}` needs a value in #[retry(..)]: {KEYS}"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(KeyValue { key, value })
    }
}

/// Whether `ty` names a `Result` (`Result<T, E>`, `io::Result<T>`,
/// `anyhow::Result<T>`, ...): a path whose last segment ends in `Result`.
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident.to_string().ends_with("Result")),
        Type::Group(group) => is_result(&group.elem),
        Type::Paren(paren) => is_result(&paren.elem),
        _ => false,
    }
}

/// Whether `tokens` hold the identifier `word` anywhere, groups included.
fn mentions(tokens: TokenStream2, word: &str) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == word,
        TokenTree::Group(group) => mentions(group.stream(), word),
        _ => false,
    })
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let options: Options = syn::parse2(attr)?;
    let mut function: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("#[retry] goes on a function with a body: {e}"),
        )
    })?;
    let is_async = function.sig.asyncness.is_some();

    let output = match &function.sig.output {
        ReturnType::Type(_, ty) if mentions(ty.to_token_stream(), "impl") => {
            return Err(syn::Error::new_spanned(
                ty,
                "#[retry] cannot return an `impl Trait`: the attempts' closure restates the return type, where `impl Trait` is not allowed; return a concrete type or a `Box<dyn Trait>`",
            ))
        }
        ReturnType::Type(_, ty) if is_result(ty) => (**ty).clone(),
        ReturnType::Type(_, ty) => {
            return Err(syn::Error::new_spanned(
                ty,
                format!(
                    "#[retry] needs a function that returns a `Result` (it retries on `Err`); `{}` is not one",
                    ty.to_token_stream()
                ),
            ))
        }
        ReturnType::Default => {
            return Err(syn::Error::new(
                function.sig.ident.span(),
                "#[retry] needs a function that returns a `Result` (it retries on `Err`); this one returns `()`",
            ))
        }
    };

    // Each attempt gets its own copy of every argument: a clone, or the
    // same reference (a `&mut` one reborrowed).
    let mut rebinds = Vec::new();
    let mut mut_self = false;
    for (index, input) in function.sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(receiver) => {
                // `&self` and `&mut self`, or written out with their type:
                // `self: &Self`, `self: &mut Self`.
                let by_reference = match (&receiver.reference, &*receiver.ty) {
                    (Some(_), _) => Some(receiver.mutability.is_some()),
                    (None, Type::Reference(r)) if receiver.colon_token.is_some() => {
                        Some(r.mutability.is_some())
                    }
                    _ => None,
                };
                let Some(mutable) = by_reference else {
                    return Err(syn::Error::new_spanned(
                        &*receiver,
                        "#[retry] cannot re-pass `self` by value to each attempt: take `&self` (or, on a function that is not async, `&mut self`)",
                    ));
                };
                if mutable && is_async {
                    return Err(syn::Error::new_spanned(
                        &*receiver,
                        "an async #[retry] method cannot take `&mut self`: each attempt's future would need its own mutable borrow; take `&self` (with interior mutability) instead",
                    ));
                }
                mut_self = mutable;
            }
            FnArg::Typed(typed) => {
                let ty = &*typed.ty;
                if let Type::ImplTrait(_) = ty {
                    return Err(syn::Error::new_spanned(
                        ty,
                        "#[retry] cannot re-pass an `impl Trait` argument to each attempt: use a generic parameter with a `Clone` bound (`fn f<T: Trait + Clone>(x: T)`) or take a reference",
                    ));
                }
                let is_mut_ref = matches!(ty, Type::Reference(r) if r.mutability.is_some());
                if is_mut_ref && is_async {
                    return Err(syn::Error::new_spanned(
                        ty,
                        "an async #[retry] function cannot take a `&mut` argument: each attempt's future would need its own mutable borrow; pass a value that is `Clone`, or a shared reference",
                    ));
                }
                // The argument keeps its name when it is a plain binding
                // (its `mut` moves to the per-attempt copy); a pattern is
                // bound to a hidden name and destructured per attempt.
                let pattern = (*typed.pat).clone();
                let name = match &*typed.pat {
                    Pat::Ident(ident) if ident.subpat.is_none() && ident.by_ref.is_none() => {
                        ident.ident.clone()
                    }
                    _ => Ident::new(&format!("__reflexio_arg{index}"), typed.pat.span()),
                };
                *typed.pat = Pat::Ident(syn::PatIdent {
                    attrs: Vec::new(),
                    by_ref: None,
                    mutability: None,
                    ident: name.clone(),
                    subpat: None,
                });
                let span = ty.span();
                rebinds.push(if is_mut_ref {
                    quote_spanned! {span=> let #pattern = &mut *#name; }
                } else {
                    quote_spanned! {span=> let #pattern = ::core::clone::Clone::clone(&#name); }
                });
            }
        }
    }

    let policy = match &options.policy {
        // A policy read from `self` in a `&mut self` method would stay
        // borrowed while each attempt borrows `self` mutably: the call
        // holds a clone instead (a policy is a shared handle: its hooks,
        // budget and seed are the same).
        Some(expr) if mut_self && mentions(expr.to_token_stream(), "self") => {
            quote! { &::reflexio::integrations::macros::held_policy(&(#expr)) }
        }
        Some(expr) => quote! { &(#expr) },
        None => quote! { ::reflexio::integrations::macros::default_policy() },
    };
    let operation = match &options.operation {
        Some(name) => name.clone(),
        None => LitStr::new(&function.sig.ident.unraw().to_string(), Span::call_site()),
    };
    let body = &function.block;
    let policy_var = Ident::new("__reflexio_policy", Span::mixed_site());
    let outcome = Ident::new("__reflexio_outcome", Span::mixed_site());
    let result = Ident::new("__reflexio_result", Span::mixed_site());
    let retried = if is_async {
        quote! {
            let #policy_var = #policy;
            let #outcome = #policy_var
                .call_async_named(#operation, || {
                    #(#rebinds)*
                    async move {
                        let #result: #output = async move #body.await;
                        #result
                    }
                })
                .await;
            ::core::result::Result::map_err(#outcome, ::reflexio::RetryError::into_inner)
        }
    } else {
        quote! {
            let #policy_var = #policy;
            let #outcome = #policy_var.call_named(#operation, || {
                #(#rebinds)*
                (|| -> #output #body)()
            });
            ::core::result::Result::map_err(#outcome, ::reflexio::RetryError::into_inner)
        }
    };
    function.block = Box::new(syn::parse_quote!({ #retried }));
    Ok(function.into_token_stream())
}
