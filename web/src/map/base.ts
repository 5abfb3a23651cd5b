// The base map every map page stands on: the configured raster tiles (天地图 or any XYZ
// service) when the platform has a tile URL, and always the district's boundary, main roads and
// towns from the platform's own GeoJSON, so that the map is usable without internet.
//
// The style has no glyphs (a glyph server would be one more thing to host offline): text on the
// map is canvas images (town names here, cluster counts on the live map) or HTML (popups).
import * as maplibregl from 'maplibre-gl'
import type { StyleSpecification } from 'maplibre-gl'
import type { FeatureCollection, Geometry } from 'geojson'
import 'maplibre-gl/dist/maplibre-gl.css'
// MapLibre starts its worker from a file next to its own module, which neither Vite's dev
// pre-bundling nor the production bundle keeps there: it gets the worker as a served asset (same
// origin, so the CSP's worker-src 'self' allows it).
import workerUrl from 'maplibre-gl/dist/maplibre-gl-worker.mjs?url'
import { api } from '../api'
import { lang } from '../i18n'
import { label } from './canvas'

maplibregl.setWorkerUrl(workerUrl)

export interface MapSettings {
  /// XYZ raster tile URL template ({z}/{x}/{y}), or null for the offline base map only.
  tile_url: string | null
  tile_attribution: string | null
  /// [lon, lat]
  center: [number, number]
  zoom: number
}

interface BaseProps {
  kind: 'boundary' | 'road' | 'town'
  name_zh: string
  name_en: string
  road_class?: 'expressway' | 'national' | 'urban'
}
export type Basemap = FeatureCollection<Geometry, BaseProps>

let settings: Promise<MapSettings> | null = null
let basemap: Promise<Basemap> | null = null

/// The console's map settings (asked once per page load).
export function mapSettings(): Promise<MapSettings> {
  settings ??= api<{ map: MapSettings }>('GET', '/api/console/settings').then((s) => s.map)
  settings.catch(() => (settings = null))
  return settings
}

/// The district's boundary, roads and towns (asked once per page load).
export function districtBasemap(): Promise<Basemap> {
  basemap ??= api<Basemap>('GET', '/api/transport/basemap')
  basemap.catch(() => (basemap = null))
  return basemap
}

function style(s: MapSettings, district: Basemap): StyleSpecification {
  const st: StyleSpecification = {
    version: 8,
    sources: { district: { type: 'geojson', data: district } },
    layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#eef2f5' } }],
  }
  if (s.tile_url) {
    st.sources.tiles = {
      type: 'raster',
      tiles: [s.tile_url],
      tileSize: 256,
      attribution: s.tile_attribution ?? '',
    }
    st.layers.push({ id: 'tiles', type: 'raster', source: 'tiles' })
  }
  const isRoad = (c: string) => ['all', ['==', ['get', 'kind'], 'road'], ['==', ['get', 'road_class'], c]] as never
  st.layers.push(
    {
      id: 'boundary-fill',
      type: 'fill',
      source: 'district',
      filter: ['==', ['get', 'kind'], 'boundary'],
      paint: { 'fill-color': '#ffffff', 'fill-opacity': s.tile_url ? 0 : 0.85 },
    },
    {
      id: 'boundary-line',
      type: 'line',
      source: 'district',
      filter: ['==', ['get', 'kind'], 'boundary'],
      paint: { 'line-color': '#7c3aed', 'line-width': 2, 'line-dasharray': [3, 2] },
    },
    {
      id: 'road-urban',
      type: 'line',
      source: 'district',
      filter: isRoad('urban'),
      paint: { 'line-color': '#9ca3af', 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 1, 14, 5] },
    },
    {
      id: 'road-national',
      type: 'line',
      source: 'district',
      filter: isRoad('national'),
      paint: { 'line-color': '#f59e0b', 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 1.5, 14, 7] },
    },
    {
      id: 'road-expressway',
      type: 'line',
      source: 'district',
      filter: isRoad('expressway'),
      paint: { 'line-color': '#ea580c', 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 2, 14, 9] },
    },
    {
      // Town names: images made in createBaseMap; every layer added later (vehicles, tracks) is
      // drawn over them.
      id: 'towns',
      type: 'symbol',
      source: 'district',
      filter: ['==', ['get', 'kind'], 'town'],
      layout: { 'icon-image': ['concat', 'town:', ['get', 'name_zh']], 'icon-allow-overlap': false },
    },
  )
  return st
}

function bounds(district: Basemap): maplibregl.LngLatBounds | null {
  const b = new maplibregl.LngLatBounds()
  let any = false
  for (const f of district.features) {
    if (f.properties.kind !== 'boundary' || f.geometry.type !== 'Polygon') continue
    for (const [lon, lat] of f.geometry.coordinates[0]) {
      b.extend([lon, lat])
      any = true
    }
  }
  return any ? b : null
}

/// A map in `container` over the district, ready (style loaded) when the promise resolves.
/// Town names are in the console's language at creation.
export async function createBaseMap(container: HTMLElement): Promise<maplibregl.Map> {
  const [s, district] = await Promise.all([mapSettings(), districtBasemap()])
  const map = new maplibregl.Map({
    container,
    style: style(s, district),
    center: s.center,
    zoom: s.zoom,
    attributionControl: { compact: true, customAttribution: lang.value === 'en' ? 'District roads: schematic, not survey data' : '区内道路为示意，非测绘数据' },
    // No symbol fade: live layers change every second, and a fade redraws the map for 300 ms
    // after each change. Keyboard panning and zooming stay on (the default) for keyboard users.
    fadeDuration: 0,
  })
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right')
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left')
  const b = bounds(district)
  if (b) map.fitBounds(b, { padding: 20, duration: 0 })
  for (const f of district.features) {
    if (f.properties.kind !== 'town') continue
    const { image, ratio } = label(lang.value === 'en' ? f.properties.name_en : f.properties.name_zh)
    map.addImage(`town:${f.properties.name_zh}`, image, { pixelRatio: ratio })
  }
  await new Promise<void>((resolve) => (map.loaded() ? resolve() : map.once('load', () => resolve())))
  return map
}
