//! Is a request really CloudFormation's, for a stack of this function's own account and region?
//!
//! Anyone allowed `lambda:InvokeFunction` can send a payload shaped like a custom-resource request, and
//! CloudFormation invokes with the stack operator's credentials, so the request itself is checked before
//! any provider call and before any PUT:
//!
//! - `StackId` is a CloudFormation stack ARN (`arn:<partition>:cloudformation:<region>:<account>:stack/…`)
//!   of the partition, region and account of the invoked function's ARN;
//! - `ResponseURL` is `https` (port 443, no user info) on the custom-resource response bucket
//!   `cloudformation-custom-resource-response-<region without dashes>` of that region, addressed as
//!   - `<bucket>.s3.<region>.<dns suffix>` or `<bucket>.s3-<region>.<dns suffix>` (virtual-hosted),
//!   - `s3.<region>.<dns suffix>/<bucket>/…` or `s3-<region>.<dns suffix>/<bucket>/…` (path-style),
//!   - and, in the `aws` partition, the global endpoint `<bucket>.s3.amazonaws.com` or
//!     `s3.amazonaws.com/<bucket>/…`,
//!
//!   where the DNS suffix is the partition's (`amazonaws.com`, `amazonaws.com.cn`, …).
//!
//! Local tests need a `http://127.0.0.1:<port>` ResponseURL: it is accepted only when the function's
//! environment sets [`LOOPBACK_SETTING`] to `true`, which the SAM template never does (a test of the
//! template proves it). The StackId rule holds even then.
//!
//! Reasons name the field and the rule, and at most the URL's host: never the URL (a bearer secret).

use url::Url;

/// The setting that lets a ResponseURL point at the loopback interface (local tests only).
pub const LOOPBACK_SETTING: &str = "SECURE_MLOPS_ALLOW_LOOPBACK_RESPONSE_URL";

/// Where this function runs, from the ARN Lambda passes with each invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub partition: String,
    pub region: String,
    pub account: String,
}

/// An ARN's first five fields; `None` unless it has them all and starts with `arn:`.
fn arn_fields(arn: &str) -> Option<[&str; 5]> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let fields = [
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    ];
    Some(fields)
}

impl Origin {
    /// From the invoked function's ARN (`arn:<partition>:lambda:<region>:<account>:function:<name>…`).
    pub fn of_function(arn: &str) -> Result<Self, String> {
        match arn_fields(arn) {
            Some([partition, "lambda", region, account, resource])
                if !partition.is_empty()
                    && !region.is_empty()
                    && account.len() == 12
                    && resource.starts_with("function:") =>
            {
                Ok(Origin {
                    partition: partition.to_owned(),
                    region: region.to_owned(),
                    account: account.to_owned(),
                })
            }
            _ => Err(format!(
                "the invocation does not carry a Lambda function ARN ({arn:?}): the function's own \
                 account and region are unknown, so no request can be verified"
            )),
        }
    }
}

/// The checks, with the one setting that relaxes them for local tests. Build once per cold start.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    allow_loopback: bool,
}

impl Verifier {
    pub fn new(allow_loopback: bool) -> Self {
        Verifier { allow_loopback }
    }

    /// From the function's environment ([`LOOPBACK_SETTING`]).
    pub fn from_env() -> Self {
        let allow = crate::settings::from_env()
            .get(LOOPBACK_SETTING)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Verifier::new(allow)
    }

    /// `Ok` when `stack_id` and `response_url` may be served by the function `function_arn`.
    pub fn verify(
        &self,
        function_arn: &str,
        stack_id: &str,
        response_url: &str,
    ) -> Result<(), String> {
        let origin = Origin::of_function(function_arn)?;
        check_stack_id(&origin, stack_id)?;
        if self.allow_loopback && is_loopback(response_url) {
            return Ok(());
        }
        check_response_url(&origin, response_url)
    }
}

fn check_stack_id(origin: &Origin, stack_id: &str) -> Result<(), String> {
    let Some([partition, service, region, account, resource]) = arn_fields(stack_id) else {
        return Err(
            "StackId is not an ARN: a custom-resource request must name the CloudFormation stack it \
             comes from (arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>)"
                .to_owned(),
        );
    };
    if service != "cloudformation" || !resource.starts_with("stack/") {
        return Err(format!(
            "StackId is a {service} ARN of resource {:?}, not a CloudFormation stack ARN",
            resource.split('/').next().unwrap_or_default()
        ));
    }
    let mut wrong = Vec::new();
    if partition != origin.partition {
        wrong.push(format!(
            "partition {partition} (this function: {})",
            origin.partition
        ));
    }
    if region != origin.region {
        wrong.push(format!(
            "region {region} (this function: {})",
            origin.region
        ));
    }
    if account != origin.account {
        wrong.push(format!(
            "account {account} (this function: {})",
            origin.account
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "StackId names {}: this function serves only stacks of its own account and region",
            wrong.join(", ")
        ))
    }
}

/// The DNS suffix of a partition's regional endpoints.
fn dns_suffix(partition: &str) -> Option<&'static str> {
    Some(match partition {
        "aws" | "aws-us-gov" => "amazonaws.com",
        "aws-cn" => "amazonaws.com.cn",
        "aws-iso" => "c2s.ic.gov",
        "aws-iso-b" => "sc2s.sgov.gov",
        "aws-iso-e" => "cloud.adc-e.uk",
        "aws-iso-f" => "csp.hci.ic.gov",
        "aws-eusc" => "amazonaws.eu",
        _ => return None,
    })
}

/// The custom-resource response bucket of `region`.
fn response_bucket(region: &str) -> String {
    format!(
        "cloudformation-custom-resource-response-{}",
        region.replace('-', "")
    )
}

/// The hosts of `origin`'s S3 endpoints (without a bucket).
fn s3_hosts(origin: &Origin, suffix: &str) -> Vec<String> {
    let mut hosts = vec![
        format!("s3.{}.{suffix}", origin.region),
        format!("s3-{}.{suffix}", origin.region),
    ];
    if origin.partition == "aws" {
        hosts.push(format!("s3.{suffix}"));
    }
    hosts
}

fn check_response_url(origin: &Origin, response_url: &str) -> Result<(), String> {
    let Some(suffix) = dns_suffix(&origin.partition) else {
        return Err(format!(
            "ResponseURL cannot be verified in partition {}: its S3 endpoints are not known to \
             this function",
            origin.partition
        ));
    };
    let Ok(url) = Url::parse(response_url) else {
        return Err("ResponseURL is not a URL".to_owned());
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if url.scheme() != "https" {
        return Err(format!(
            "ResponseURL uses {}, not https (host {host})",
            url.scheme()
        ));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.port().is_some_and(|p| p != 443)
    {
        return Err(format!(
            "ResponseURL carries user info or a port other than 443 (host {host})"
        ));
    }
    let bucket = response_bucket(&origin.region);
    let endpoints = s3_hosts(origin, suffix);
    let virtual_hosted = endpoints.iter().any(|e| host == format!("{bucket}.{e}"));
    let path_style = endpoints.contains(&host)
        && url
            .path_segments()
            .and_then(|mut s| s.next())
            .is_some_and(|first| first == bucket);
    if virtual_hosted || path_style {
        Ok(())
    } else {
        Err(format!(
            "ResponseURL host {host} is not CloudFormation's custom-resource response bucket \
             {bucket} on S3 of {} ({}): responses go only to CloudFormation of this function's \
             own region",
            origin.region, origin.partition
        ))
    }
}

fn is_loopback(response_url: &str) -> bool {
    Url::parse(response_url).is_ok_and(|url| {
        let host = url.host_str().unwrap_or_default();
        matches!(url.scheme(), "http" | "https")
            && (host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:111122223333:function:secure-mlops-studio";
    const STACK: &str = "arn:aws:cloudformation:eu-west-1:111122223333:stack/ml/5b1d7a40-0000-11ef-8000-0a1b2c3d4e5f";

    fn ok(url: &str) -> Result<(), String> {
        Verifier::new(false).verify(FUNCTION, STACK, url)
    }

    #[test]
    fn accepts_each_documented_host_form_of_the_functions_region() {
        for url in [
            "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/arn%3Aaws/x?X-Amz-Signature=s",
            "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/arn%3Aaws/x",
            "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/arn%3Aaws/x",
            "https://s3-eu-west-1.amazonaws.com/cloudformation-custom-resource-response-euwest1/arn%3Aaws/x",
            "https://s3.eu-west-1.amazonaws.com/cloudformation-custom-resource-response-euwest1/arn",
            "https://CloudFormation-Custom-Resource-Response-EUWEST1.s3.eu-west-1.amazonaws.com:443/x",
        ] {
            assert_eq!(ok(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn other_partitions_use_their_own_dns_suffix_and_no_global_endpoint() {
        let cn = Verifier::new(false);
        let f = "arn:aws-cn:lambda:cn-north-1:111122223333:function:f";
        let s = "arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/ml/1";
        let good = "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/x";
        assert_eq!(cn.verify(f, s, good), Ok(()));
        let global = "https://cloudformation-custom-resource-response-cnnorth1.s3.amazonaws.com/x";
        assert!(cn.verify(f, s, global).is_err());
        let gov = "arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:f";
        let gov_stack = "arn:aws-us-gov:cloudformation:us-gov-west-1:111122223333:stack/ml/1";
        let gov_url = "https://cloudformation-custom-resource-response-usgovwest1.s3-us-gov-west-1.amazonaws.com/x";
        assert_eq!(cn.verify(gov, gov_stack, gov_url), Ok(()));
    }

    #[test]
    fn refuses_foreign_hosts_schemes_ports_and_buckets_without_naming_the_url() {
        for (url, says) in [
            (
                "https://evil.example.com/cfn?X-Amz-Signature=secret",
                "host evil.example.com",
            ),
            (
                "http://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/x?X-Amz-Signature=secret",
                "not https",
            ),
            (
                "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com:8443/x?X-Amz-Signature=secret",
                "port",
            ),
            (
                "https://user:pw@cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/x?X-Amz-Signature=secret",
                "user info",
            ),
            // Another region's response bucket, or our bucket name as a prefix of someone else's.
            (
                "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x?X-Amz-Signature=secret",
                "not CloudFormation's",
            ),
            (
                "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com.evil.example/x?X-Amz-Signature=secret",
                "not CloudFormation's",
            ),
            (
                "https://s3.eu-west-1.amazonaws.com/attacker-bucket/cloudformation-custom-resource-response-euwest1?X-Amz-Signature=secret",
                "not CloudFormation's",
            ),
            (
                "https://127.0.0.1:8080/cfn?X-Amz-Signature=secret",
                "host 127.0.0.1",
            ),
            ("not a url X-Amz-Signature=secret", "not a URL"),
        ] {
            let err = ok(url).expect_err(url);
            assert!(err.contains(says), "{url}: {err}");
            assert!(
                !err.contains("secret") && !err.contains("/x"),
                "the URL leaked: {err}"
            );
        }
    }

    #[test]
    fn refuses_stacks_of_other_accounts_regions_partitions_and_non_stack_arns() {
        let v = Verifier::new(true);
        let url = "http://127.0.0.1:9000/cfn/k";
        for (stack, says) in [
            (
                "arn:aws:cloudformation:eu-west-1:999999999999:stack/ml/1",
                "account 999999999999",
            ),
            (
                "arn:aws:cloudformation:us-east-1:111122223333:stack/ml/1",
                "region us-east-1",
            ),
            (
                "arn:aws-cn:cloudformation:eu-west-1:111122223333:stack/ml/1",
                "partition aws-cn",
            ),
            (
                "arn:aws:cloudformation:eu-west-1:111122223333:stackset/ml:1",
                "not a CloudFormation stack",
            ),
            (
                "arn:aws:s3:eu-west-1:111122223333:stack/ml/1",
                "not a CloudFormation stack",
            ),
            ("my-stack", "not an ARN"),
            ("", "not an ARN"),
        ] {
            let err = v.verify(FUNCTION, stack, url).expect_err(stack);
            assert!(err.contains(says), "{stack}: {err}");
        }
    }

    #[test]
    fn loopback_only_with_the_setting_and_never_without_a_function_arn() {
        let url = "http://127.0.0.1:9000/cfn/k?X-Amz-Signature=s";
        assert!(Verifier::new(false).verify(FUNCTION, STACK, url).is_err());
        assert_eq!(Verifier::new(true).verify(FUNCTION, STACK, url), Ok(()));
        assert_eq!(
            Verifier::new(true).verify(FUNCTION, STACK, "http://localhost:1/x"),
            Ok(())
        );
        assert_eq!(
            Verifier::new(true).verify(FUNCTION, STACK, "http://[::1]:1/x"),
            Ok(())
        );
        // The setting allows the loopback interface, nothing else.
        assert!(
            Verifier::new(true)
                .verify(FUNCTION, STACK, "http://10.0.0.1/x")
                .is_err()
        );
        for arn in [
            "",
            "secure-mlops-studio",
            "arn:aws:iam::111122223333:role/r",
        ] {
            let err = Verifier::new(true).verify(arn, STACK, url).expect_err(arn);
            assert!(err.contains("function ARN"), "{err}");
        }
        // A qualified ARN (alias or version) is still this function.
        let alias = "arn:aws:lambda:eu-west-1:111122223333:function:secure-mlops-studio:live";
        assert_eq!(Verifier::new(true).verify(alias, STACK, url), Ok(()));
    }
}
