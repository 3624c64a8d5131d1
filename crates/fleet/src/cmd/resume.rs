//! `fleet resume`.

use std::time::Duration;

use crate::cli::ResumeArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::resume;

pub(crate) fn run(services: &Services, args: &ResumeArgs, json_mode: bool) -> Result<(), Error> {
    let (mut options, copied) =
        resume::options(services, &args.task, &args.agent, args.prompt.clone())?;
    options.startup_grace = args.startup_grace_ms.map(Duration::from_millis);
    super::deploy::deploy_interruptibly(services, options, json_mode)?;
    if let Some(copied) = copied {
        copied.keep();
    }
    Ok(())
}
