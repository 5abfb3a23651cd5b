import { createRouter, createWebHistory } from 'vue-router'
import { me, checked, loadMe } from './session'
import Login from './pages/Login.vue'
import Overview from './pages/Overview.vue'
import Alarms from './pages/Alarms.vue'
import Vehicles from './pages/Vehicles.vue'
import Vehicle from './pages/Vehicle.vue'
import Audit from './pages/Audit.vue'
import Users from './pages/Users.vue'
import NotFound from './pages/NotFound.vue'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', component: Login, meta: { public: true } },
    { path: '/', component: Overview },
    { path: '/alarms', component: Alarms },
    { path: '/vehicles', component: Vehicles },
    { path: '/vehicles/:id', component: Vehicle },
    { path: '/audit', component: Audit },
    { path: '/users', component: Users },
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
  // The system and security administrators' work is the accounts.
  if (['system_admin', 'security_admin'].includes(me.value.user.role) && to.path === '/') return { path: '/users' }
  return true
})
