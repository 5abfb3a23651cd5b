import { createRouter, createWebHistory } from 'vue-router'
import { me, checked, loadMe } from './session'
import Login from './pages/Login.vue'
import NotFound from './pages/NotFound.vue'

// Pages load when first opened: the maps (MapLibre) and charts (ECharts) are most of the code,
// and the login page should not wait for them.
export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', component: Login, meta: { public: true } },
    { path: '/', component: () => import('./pages/Overview.vue') },
    { path: '/alarms', component: () => import('./pages/Alarms.vue') },
    { path: '/vehicles', component: () => import('./pages/Vehicles.vue') },
    { path: '/map', component: () => import('./pages/Map.vue') },
    { path: '/vehicles/:id', component: () => import('./pages/Vehicle.vue') },
    { path: '/vehicles/:id/track', component: () => import('./pages/Track.vue') },
    { path: '/terminals', component: () => import('./pages/Terminals.vue') },
    { path: '/enterprises', component: () => import('./pages/Enterprises.vue') },
    { path: '/practitioners', component: () => import('./pages/Practitioners.vue') },
    { path: '/supervision/vehicles', component: () => import('./pages/SupervisionVehicles.vue') },
    { path: '/expiry', component: () => import('./pages/Expiry.vue') },
    // One route for the list and a hazard open in its drawer: the list stays as it was.
    { path: '/hazards/:id?', component: () => import('./pages/Hazards.vue') },
    { path: '/documents/:id?', component: () => import('./pages/Documents.vue') },
    // Penalties and incidents are one page with a tab each; the address says which.
    { path: '/penalties/:id?', component: () => import('./pages/Penalties.vue') },
    { path: '/incidents/:id?', component: () => import('./pages/Penalties.vue') },
    { path: '/archives', component: () => import('./pages/Archives.vue') },
    { path: '/credit', component: () => import('./pages/Credit.vue') },
    { path: '/orgs', component: () => import('./pages/Orgs.vue') },
    { path: '/tokens', component: () => import('./pages/Tokens.vue') },
    { path: '/security', component: () => import('./pages/Security.vue') },
    { path: '/audit', component: () => import('./pages/Audit.vue') },
    { path: '/users', component: () => import('./pages/Users.vue') },
    { path: '/patients', component: () => import('./pages/Patients.vue') },
    { path: '/patients/:id', component: () => import('./pages/PatientRecord.vue') },
    { path: '/my-record', component: () => import('./pages/PatientRecord.vue') },
    { path: '/mpi', component: () => import('./pages/MpiReviews.vue') },
    { path: '/referrals/:id?', component: () => import('./pages/Referrals.vue') },
    { path: '/family-doctor', component: () => import('./pages/FamilyDoctor.vue') },
    { path: '/worklist', component: () => import('./pages/Worklist.vue') },
    { path: '/appointments', component: () => import('./pages/Appointments.vue') },
    { path: '/remote', component: () => import('./pages/Remote.vue') },
    { path: '/:rest(.*)*', component: NotFound },
  ],
})

// Every page but the login needs a session without a pending restriction (first password
// change, second factor enrolment): the login page deals with those.
router.beforeEach(async (to) => {
  if (!checked.value) await loadMe()
  if (to.meta.public) return true
  if (!me.value || me.value.restriction) return { path: '/login', query: { next: to.fullPath } }
  // The audit administrator's work is the audit log, nothing else.
  if (me.value.user.role === 'audit_admin' && to.path === '/') return { path: '/audit' }
  // A resident's console is their own health record.
  if (me.value.user.role === 'resident' && to.path === '/') return { path: '/my-record' }
  // The system and security administrators' work is the accounts.
  if (['system_admin', 'security_admin'].includes(me.value.user.role) && to.path === '/') return { path: '/users' }
  return true
})
