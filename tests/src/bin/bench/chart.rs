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

/// `bars`: (figure, [factor per series]); `series`: the series names (e.g. the two functions).
pub fn factors(
    path: &Path,
    title: &str,
    series: &[&str; 2],
    bars: &[(String, [f64; 2])],
) -> Result<(), String> {
    register_font()?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let top = bars
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        * 3.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..bars.len() as f64, (0.5f64..top).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("Python / Rust (times better, log scale)")
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [RGBColor(0xd3, 0x5f, 0x1c), RGBColor(0x2b, 0x6c, 0xb0)];
    for (s, name) in series.iter().enumerate() {
        let color = colors[s];
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(i, (_, v))| {
                let x0 = i as f64 + 0.12 + s as f64 * 0.38;
                v[s].is_finite().then(|| {
                    Rectangle::new([(x0, 0.5), (x0 + 0.36, v[s].max(0.5))], color.filled())
                })
            }))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(i, (_, v))| {
                let x0 = i as f64 + 0.12 + s as f64 * 0.38;
                v[s].is_finite().then(|| {
                    Text::new(
                        format!("{:.1}x", v[s]),
                        (x0, v[s].max(0.5) * 1.15),
                        ("sans-serif", 13),
                    )
                })
            }))
            .map_err(|e| err(&e))?;
    }
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (label, _))| {
            Text::new(
                label.clone(),
                (i as f64 + 0.12, top / 1.6),
                ("sans-serif", 15),
            )
        }))
        .map_err(|e| err(&e))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
