// The vehicles on the map: one clustered GeoJSON source, updated with diffs (never re-created),
// single vehicles as circles coloured by state with a heading arrow when driving, clusters as
// circles sized by count. The style has no glyphs, so cluster counts are small canvas images
// made on demand (the style's missing-image resolver), and the arrow is one too.
import type { ExpressionSpecification, GeoJSONSource, Map as MapLibreMap } from 'maplibre-gl'
import type { FeatureCollection } from 'geojson'
import { STATE_COLOURS, type VehicleFeature } from './vehicles'
import { paint } from './canvas'

const SOURCE = 'vehicles'
const SELECTED = 'vehicle-selected'
const CLUSTERS = 'vehicle-clusters'
const COUNTS = 'vehicle-cluster-counts'
const POINTS = 'vehicle-points'
const ARROWS = 'vehicle-arrows'
const SELECTED_ARROW = 'vehicle-selected-arrow'
const ARROW = 'vehicle-arrow'
const COUNT_PREFIX = 'vehicle-count:'
/// Above this zoom every vehicle is drawn on its own.
export const CLUSTER_MAX_ZOOM = 13

const byState: ExpressionSpecification = [
  'match',
  ['get', 'state'],
  'moving', STATE_COLOURS.moving,
  'stopped', STATE_COLOURS.stopped,
  'alarm', STATE_COLOURS.alarm,
  STATE_COLOURS.offline,
]
const pointRadius: ExpressionSpecification = ['interpolate', ['linear'], ['zoom'], 8, 4, 16, 8]

/// A narrow white triangle pointing north (rotated to the heading on the map).
function addArrow(map: MapLibreMap) {
  const { image, ratio } = paint(12, 12, (c) => {
    c.fillStyle = '#fff'
    c.beginPath()
    c.moveTo(6, 0.5)
    c.lineTo(9.5, 11.5)
    c.lineTo(2.5, 11.5)
    c.closePath()
    c.fill()
  })
  map.addImage(ARROW, image, { pixelRatio: ratio })
}

/// A cluster's count (e.g. "37", "1.2k") as white text.
function addCount(map: MapLibreMap, id: string) {
  const text = id.slice(COUNT_PREFIX.length)
  const font = '600 12px system-ui, sans-serif'
  const width = Math.ceil(text.length * 8) + 4
  const { image, ratio } = paint(width, 16, (c) => {
    c.font = font
    c.fillStyle = '#fff'
    c.textAlign = 'center'
    c.textBaseline = 'middle'
    c.fillText(text, width / 2, 8.5)
  })
  map.addImage(id, image, { pixelRatio: ratio })
}

export class VehicleLayers {
  private readonly source: GeoJSONSource
  private readonly selectedSource: GeoJSONSource
  /// The vehicles now in the source.
  private inSource = new Set<string>()

  /// `select` is called with the id of a vehicle clicked on the map.
  constructor(map: MapLibreMap, select: (id: string) => void) {
    addArrow(map)
    map.setMissingStyleImageResolver((id) => {
      if (id.startsWith(COUNT_PREFIX)) addCount(map, id)
    })
    map.addSource(SOURCE, {
      type: 'geojson',
      data: { type: 'FeatureCollection', features: [] },
      promoteId: 'id',
      cluster: true,
      clusterRadius: 45,
      clusterMaxZoom: CLUSTER_MAX_ZOOM,
      clusterProperties: { alarm: ['+', ['case', ['==', ['get', 'state'], 'alarm'], 1, 0]] },
    })
    map.addSource(SELECTED, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } })
    const clustered: ExpressionSpecification = ['has', 'point_count']
    map.addLayer({
      id: CLUSTERS,
      type: 'circle',
      source: SOURCE,
      filter: clustered,
      paint: {
        'circle-color': '#1e3a8a',
        'circle-opacity': 0.85,
        'circle-radius': ['step', ['get', 'point_count'], 12, 10, 15, 50, 18, 200, 22, 1000, 27],
        'circle-stroke-color': ['case', ['>', ['get', 'alarm'], 0], STATE_COLOURS.alarm, '#ffffff'],
        'circle-stroke-width': ['case', ['>', ['get', 'alarm'], 0], 3, 1.5],
      },
    })
    map.addLayer({
      id: COUNTS,
      type: 'symbol',
      source: SOURCE,
      filter: clustered,
      layout: {
        'icon-image': ['concat', COUNT_PREFIX, ['to-string', ['get', 'point_count_abbreviated']]],
        'icon-allow-overlap': true,
        'icon-ignore-placement': true,
      },
    })
    map.addLayer({
      id: POINTS,
      type: 'circle',
      source: SOURCE,
      filter: ['!', clustered],
      paint: {
        'circle-color': byState,
        'circle-radius': pointRadius,
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': 1.5,
      },
    })
    const arrows = (id: string, source: string, filter: ExpressionSpecification) =>
      map.addLayer({
        id,
        type: 'symbol',
        source,
        filter,
        minzoom: 11,
        layout: {
          'icon-image': ARROW,
          'icon-size': ['interpolate', ['linear'], ['zoom'], 11, 0.6, 16, 1],
          'icon-rotate': ['get', 'heading'],
          'icon-rotation-alignment': 'map',
          'icon-allow-overlap': true,
          'icon-ignore-placement': true,
        },
      })
    const isDriving: ExpressionSpecification = ['==', ['get', 'driving'], true]
    arrows(ARROWS, SOURCE, ['all', ['!', clustered], isDriving])
    // The chosen vehicle, drawn even where it is inside a cluster.
    map.addLayer({
      id: SELECTED,
      type: 'circle',
      source: SELECTED,
      paint: {
        'circle-color': byState,
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, 6, 16, 10],
        'circle-stroke-color': '#facc15',
        'circle-stroke-width': 4,
      },
    })
    arrows(SELECTED_ARROW, SELECTED, isDriving)
    this.source = map.getSource(SOURCE) as GeoJSONSource
    this.selectedSource = map.getSource(SELECTED) as GeoJSONSource

    for (const layer of [POINTS, SELECTED]) {
      map.on('click', layer, (e) => {
        const id = e.features?.[0]?.properties?.id
        if (typeof id === 'string') select(id)
      })
    }
    map.on('click', CLUSTERS, async (e) => {
      const f = e.features?.[0]
      if (!f || f.geometry.type !== 'Point') return
      const zoom = await this.source.getClusterExpansionZoom(f.properties.cluster_id)
      map.easeTo({ center: f.geometry.coordinates as [number, number], zoom })
    })
    for (const layer of [POINTS, CLUSTERS, SELECTED]) {
      map.on('mouseenter', layer, () => (map.getCanvas().style.cursor = 'pointer'))
      map.on('mouseleave', layer, () => (map.getCanvas().style.cursor = ''))
    }
  }

  /// Puts the shown vehicles on the map: all of them (`changed` null), or only the changed ones
  /// as a diff (added, moved, restyled, or gone because a filter now hides them).
  update(shown: ReadonlyMap<string, VehicleFeature>, changed: ReadonlySet<string> | null) {
    if (!changed) {
      const data: FeatureCollection = { type: 'FeatureCollection', features: [...shown.values()] }
      void this.source.setData(data)
      this.inSource = new Set(shown.keys())
      return
    }
    const add: VehicleFeature[] = []
    const remove: string[] = []
    for (const id of changed) {
      const f = shown.get(id)
      if (f) {
        add.push(f)
        this.inSource.add(id)
      } else if (this.inSource.delete(id)) {
        remove.push(id)
      }
    }
    if (add.length || remove.length) void this.source.updateData({ add, remove })
  }

  /// Marks the chosen vehicle (or none).
  select(f: VehicleFeature | null) {
    void this.selectedSource.setData({ type: 'FeatureCollection', features: f ? [f] : [] })
  }
}
