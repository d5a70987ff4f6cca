//! The PNG of the benchmark: how many times better Rust is than the Python reference, per figure.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

/// Fonts looked for (plotters renders text in pure Rust, but needs a TrueType file).
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn register_font() -> Result<(), String> {
    let path = std::env::var("BENCH_FONT")
        .ok()
        .into_iter()
        .chain(FONTS.iter().map(|s| s.to_string()))
        .find(|p| Path::new(p).is_file())
        .ok_or("no TrueType font found (set BENCH_FONT=/path/to/font.ttf)")?;
    let bytes: &'static [u8] = Box::leak(
        std::fs::read(&path)
            .map_err(|e| format!("{path}: {e}"))?
            .into_boxed_slice(),
    );
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path}: not a usable font"))
}

/// `bars`: (figure, [factor per series]), each factor "times better for Rust" (above 1, Rust is
/// better; below, Python is); `series`: the series names (e.g. the two functions). Each bar starts at
/// parity (1×) and goes up when Rust is better, down when it is worse; each group is named under the
/// axis, and the legend sits above the plot, clear of the bars.
pub fn factors(
    path: &Path,
    title: &str,
    series: &[&str; 2],
    bars: &[(String, [f64; 2])],
) -> Result<(), String> {
    register_font()?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (1200, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let values = || {
        bars.iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let top = values().fold(1.0f64, f64::max) * 2.5;
    let bottom = values().fold(1.0f64, f64::min) / 2.5;
    let n = bars.len();
    let (title_area, plot) = root.split_vertically(70);
    title_area
        .titled(title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let colors = [RGBColor(0xd3, 0x5f, 0x1c), RGBColor(0x2b, 0x6c, 0xb0)];
    // The legend, in the title area: never over a bar.
    for (s, name) in series.iter().enumerate() {
        let x = 120 + s as i32 * 220;
        title_area
            .draw(&Rectangle::new([(x, 44), (x + 16, 58)], colors[s].filled()))
            .map_err(|e| err(&e))?;
        title_area
            .draw(&Text::new(
                name.to_string(),
                (x + 22, 44),
                ("sans-serif", 15),
            ))
            .map_err(|e| err(&e))?;
    }
    let labels: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
    let mut chart = ChartBuilder::on(&plot)
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, (bottom..top).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("Rust better by (×, log scale; 1× = parity)")
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    // Parity.
    chart
        .draw_series(LineSeries::new(
            [(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
            BLACK.stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    for (s, color) in colors.iter().enumerate() {
        let x0 = |i: usize| i as f64 - 0.4 + s as f64 * 0.41;
        let shown = || {
            bars.iter()
                .enumerate()
                .map(move |(i, (_, v))| (i, v[s]))
                .filter(|(_, v)| v.is_finite() && *v > 0.0)
        };
        chart
            .draw_series(
                shown().map(|(i, v)| {
                    Rectangle::new([(x0(i), 1.0), (x0(i) + 0.38, v)], color.filled())
                }),
            )
            .map_err(|e| err(&e))?;
        chart
            .draw_series(shown().map(|(i, v)| {
                // Above an upward bar, below a downward one.
                let y = if v >= 1.0 { v * 1.2 } else { v / 1.05 };
                Text::new(format!("{v:.1}×"), (x0(i), y), ("sans-serif", 13))
            }))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}
