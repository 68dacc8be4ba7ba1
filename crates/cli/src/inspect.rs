//! `berth inspect`: what a model file takes and gives.

use std::path::PathBuf;

use berth_runtime::LoadOptions;
use clap::Args;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Model file: ONNX (.onnx), XGBoost JSON (.json) or LightGBM text (.txt).
    model: PathBuf,
    /// Print JSON instead of a readable summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let model = berth_runtime::load(&args.model, &LoadOptions::default())?;
    let info = model.info();
    if args.json {
        println!("{}", serde_json::to_string_pretty(info)?);
        return Ok(());
    }
    println!("model:    {}", args.model.display());
    println!("format:   {}", info.format);
    println!("task:     {}", serde_json::to_string(&info.task)?);
    println!("features: {}", info.num_features);
    if let Some(names) = &info.feature_names {
        println!("          {}", names.join(", "));
    }
    println!("inputs:");
    for input in &info.inputs {
        println!("  {input}");
    }
    println!("outputs:");
    for output in &info.outputs {
        println!(
            "  {} ({})",
            output.tensor,
            serde_json::to_string(&output.role)?.trim_matches('"')
        );
    }
    Ok(())
}
